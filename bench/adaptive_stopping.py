"""Adaptive stopping (--target-ci 0.01) against the fixed rule (64 runs and 2 s) on the zoo:
iterations and wall time side by side, and how far the two medians are apart.

Figures: total steady-state time adaptive / fixed (<= 1.0: never more device time), and
the largest relative difference between the two medians (<= 0.02: two runs each within
+-1 % of their own median may differ by up to 2 %). Whether the fixed median falls inside
the adaptive run's interval is shown per model: on a shared machine it often does not,
because run-to-run variation exceeds any one run's interval.
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
    rows, fixed_s, adaptive_s, worst = [], 0.0, 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in write_zoo(Path(tmp)).items():
            fixed = _run(path, StopRule(64, 2.0, 60.0))
            adaptive = _run(path, StopRule(64, 2.0, 60.0, target_ci=0.01))
            lo, hi = adaptive["latency_ms"]["median_ci95"] or (float("nan"),) * 2
            agree = lo <= fixed["latency_ms"]["p50"] <= hi
            diff = abs(adaptive["latency_ms"]["p50"] / fixed["latency_ms"]["p50"] - 1)
            worst = max(worst, diff)
            fixed_s += fixed["steady_seconds"]
            adaptive_s += adaptive["steady_seconds"]
            rows.append(f"{name}: fixed {fixed['latency_ms']['n']} runs/"
                        f"{fixed['steady_seconds']:.2f} s p50 {fixed['latency_ms']['p50']:.3f}, "
                        f"adaptive {adaptive['latency_ms']['n']} runs/"
                        f"{adaptive['steady_seconds']:.2f} s p50 "
                        f"{adaptive['latency_ms']['p50']:.3f} [{lo:.3f}, {hi:.3f}] "
                        f"{'inside' if agree else 'outside'} (diff {diff:.1%})")  # fmt: skip
    detail = "; ".join(rows)
    return [
        Figure("adaptive stopping: steady-state time adaptive / fixed", adaptive_s / fixed_s,
               1.0, True, detail),
        Figure("adaptive stopping: largest median difference to the fixed rule", worst, 0.02,
               True, detail),
    ]  # fmt: skip
