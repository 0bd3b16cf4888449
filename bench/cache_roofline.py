"""The cache-aware roofline on this machine: per-level calibrated roofs against the DRAM roof,
and how many zoo models a DRAM-only roofline labels bound by a roof they beat (the issue-17
contradiction) against the cache-aware one (target 0).

Each zoo model is counted (collector.flops: flops, summed bytes, unique bytes = the working
set) and timed in onnxruntime at one thread (median of runs within 0.5 s after a warm-up),
then placed twice with the same calibration: DRAM roof only, and with the cache roofs.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from agent.engine.calibrate import calibrate
from bench.figure import Figure
from collector.flops import count_model
from collector.report import roofline
from collector.report.roofs import calibration_roofs
from collector.zoo import ZOO, write_zoo


def _p50_ms(path: Path, seconds: float = 0.5) -> float:
    """Median latency in ms of one-thread runs of the model at its fixed input shapes."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros([int(d) for d in i.shape], np.float32) for i in session.get_inputs()}
    session.run(None, feeds)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < 5 or time.perf_counter() < deadline:
        t0 = time.perf_counter_ns()
        session.run(None, feeds)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times)


def _beats_its_label(point: roofline.RooflinePoint | None, gbs: float) -> bool:
    """A memory-bound label whose roof the measured bandwidth exceeds: the contradiction."""
    if point is None or not point.bound.startswith("memory"):
        return False
    return gbs > (point.roof_bandwidth_gbs or 0.0)


def _legacy_bound(intensity: float, peak: float, dram: float) -> str:
    """The label before issue 17: the side of the DRAM ridge, whatever the point achieved."""
    return "memory" if intensity * dram < peak else "compute"


def run() -> list[Figure]:
    cal = calibrate(1)
    caches = calibration_roofs(cal)
    peak, dram = cal["peak_gflops"], cal["bandwidth_gbs"]
    lines: list[str] = []
    contradictions = {"DRAM only": 0, "cache-aware": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in write_zoo(Path(tmp), names=list(ZOO)).items():
            total = count_model(path).total
            p50 = _p50_ms(path)
            gbs = total.bytes / (p50 * 1e6)
            old = _legacy_bound(total.flops / total.bytes, peak, dram)
            new = roofline.place(
                total.flops, total.bytes, p50, peak, dram,
                caches=caches, working_set=total.unique_bytes,
            )  # fmt: skip
            contradictions["DRAM only"] += old == "memory" and gbs > dram
            contradictions["cache-aware"] += _beats_its_label(new, gbs)
            lines.append(
                f"{name} {gbs:.1f} GB/s: {old} -> "
                f"{new.bound if new else 'n/a'} (slowdown {new.slowdown if new else 0:.2f})"
            )
    roofs = ", ".join(f"{r.level} {r.bandwidth_gbs:.0f}" for r in caches) or "none"
    detail = f"DRAM {dram:.0f} GB/s, cache roofs {roofs}; " + "; ".join(lines)
    figures = [
        Figure("zoo models labelled bound by a roof they beat (cache-aware)",
               float(contradictions["cache-aware"]), 0, True,
               f"before (DRAM ridge side only): {contradictions['DRAM only']}; {detail}"),
    ]  # fmt: skip
    if caches:
        best = max(r.bandwidth_gbs for r in caches)
        figures.append(
            Figure("best cache roof / DRAM roof", best / dram, 1.0, False,
                   f"one thread; {'valid' if cal['valid'] else 'invalid'} calibration"),
        )  # fmt: skip
    return figures


if __name__ == "__main__":
    for figure in run():
        print(figure.row())
