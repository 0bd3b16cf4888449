"""Sampler interference: steady-state median with memory, thermal and power sampling at 100 Hz
against sampling off, on the same ~1 ms model in the same run (target <= 1.02).

Power comes from the committed Intel laptop tree (RAPL files read through the same code path
as on a laptop; this machine has no readable sensor); "off" keeps only one memory sample at
each end of the run. Rounds alternate on and off so drift hits both alike.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from agent.engine.measure import MeasureSettings, measure
from agent.engine.session import SessionSettings
from agent.engine.timing import StopRule
from bench.figure import Figure
from bench.harness_overhead import _model

ROUNDS = 5
TREE = Path(__file__).resolve().parents[1] / "tests" / "data" / "sysfs" / "intel-laptop-rapl"


def _median(path: Path, sampling: bool) -> tuple[float, int]:
    settings = MeasureSettings(
        session=SessionSettings(threads=1), warmup_runs=20, warmup_seconds=0.2,
        stop=StopRule(64, 1.5, 10.0), sample_interval_s=0.01 if sampling else 60.0,
        power=sampling, power_rate_hz=100.0, idle_seconds=0.2, root=str(TREE),
    )  # fmt: skip
    result = measure(path, settings)
    samples = (result.document["power"] or {}).get("samples", 0)
    return float(np.median(result.latencies_ns)), samples


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        path = _model(Path(tmp) / "mm.onnx", 96, 768)
        ratios, power_samples = [], []
        for _ in range(ROUNDS):
            on, samples = _median(path, True)
            off, _ = _median(path, False)
            ratios.append(on / off)
            power_samples.append(samples)
    detail = (
        f"MatMul 96x768x768, 1 thread, 1.5 s per side; power samples per window "
        f"{min(power_samples)}-{max(power_samples)}; per-round ratios "
        + ", ".join(f"{r:.3f}" for r in ratios)
    )
    return [Figure("sampler interference (100 Hz on / off)", float(np.median(ratios)), 1.02,
                   True, detail)]  # fmt: skip
