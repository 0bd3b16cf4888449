"""Adaptive stopping (--target-ci 0.01) against the fixed rule (64 runs and 2 s) on the zoo:
iterations and wall time side by side, and whether the two medians agree within the
adaptive run's 95 % interval. The figure is the ratio of total steady-state time
(adaptive / fixed); the target (<= 1.0) says adaptive never costs more device time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from agent.measure import MeasureSettings, measure
from agent.session import SessionSettings
from agent.timing import StopRule
from bench.figure import Figure
from collector.zoo import write_zoo


def _run(path: Path, rule: StopRule) -> dict:
    settings = MeasureSettings(session=SessionSettings(threads=1), warmup_runs=10,
                               warmup_seconds=0.3, stop=rule, power=False)  # fmt: skip
    return measure(path, settings).document


def run() -> list[Figure]:
    rows, fixed_s, adaptive_s = [], 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in write_zoo(Path(tmp)).items():
            fixed = _run(path, StopRule(64, 2.0, 60.0))
            adaptive = _run(path, StopRule(64, 2.0, 60.0, target_ci=0.01))
            lo, hi = adaptive["latency_ms"]["median_ci95"] or (float("nan"),) * 2
            agree = lo <= fixed["latency_ms"]["p50"] <= hi
            fixed_s += fixed["steady_seconds"]
            adaptive_s += adaptive["steady_seconds"]
            rows.append(f"{name}: fixed {fixed['latency_ms']['n']} runs/"
                        f"{fixed['steady_seconds']:.2f} s p50 {fixed['latency_ms']['p50']:.3f}, "
                        f"adaptive {adaptive['latency_ms']['n']} runs/"
                        f"{adaptive['steady_seconds']:.2f} s p50 "
                        f"{adaptive['latency_ms']['p50']:.3f} [{lo:.3f}, {hi:.3f}] "
                        f"{'agree' if agree else 'DISAGREE'}")  # fmt: skip
    return [Figure("adaptive stopping: steady-state time adaptive / fixed", adaptive_s / fixed_s,
                   1.0, True, "; ".join(rows))]  # fmt: skip
