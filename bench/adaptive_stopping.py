"""Adaptive stopping (--target-ci 0.01) against the fixed rule (64 runs and 2 s) on the zoo:
device time side by side, and whether the medians agree within the recorded interval.

The adaptive runs are capped at the fixed rule's 2 s (--max-seconds 2), so they never spend
more device time; one that is capped records the wider interval it achieved. Each model is
measured in ABBA order (fixed, adaptive, adaptive, fixed), `cycles` times, every run in a
fresh session, so neither rule always runs first or on a warmer machine.

Figures: total steady-state time adaptive / fixed (<= 1.0: never more device time), and the
fraction of (fixed, adaptive) pairs of the same model whose fixed median lies inside the
adaptive run's recorded interval (latency_ms.median_ci95_blocks; >= 0.95, its nominal level).
The detail measures, side by side, what the interval cannot cover: how often one fixed run's
median lies inside another fixed run's own interval, and the spread of the fixed medians
across runs against the recorded half-width.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

from agent.engine.measure import MeasureSettings, measure
from agent.engine.session import SessionSettings
from agent.engine.timing import StopRule
from bench.figure import Figure
from collector.zoo import write_zoo

FIXED = StopRule(64, 2.0, 60.0)
# Capped at the fixed rule's 2 s: where the machine drifts more than +-1 % within seconds,
# the drift-aware interval never gets there, and the run keeps what it achieved by then.
ADAPTIVE = StopRule(64, 2.0, 2.0, target_ci=0.01)


def _doc(path: Path, settings: MeasureSettings) -> dict[str, Any]:
    """The figures this bench needs from one measurement's result document."""
    doc = measure(path, settings).document
    lat = doc["latency_ms"]
    return {"p50": lat["p50"], "n": lat["n"], "ci": lat["median_ci95_blocks"],
            "iid": lat["median_ci95"], "seconds": doc["steady_seconds"],
            "reason": doc["stop_reason"]}  # fmt: skip


def _inside(value: float, ci: list[float] | None) -> bool:
    return ci is not None and ci[0] <= value <= ci[1]


def _overlap(a: list[float] | None, b: list[float] | None) -> bool:
    return a is not None and b is not None and a[0] <= b[1] and b[0] <= a[1]


def _pairs(fixed: list[dict[str, Any]], adaptive: list[dict[str, Any]]) -> dict[str, list[bool]]:
    """Agreement checks over every (fixed, adaptive) pair and every ordered (fixed, fixed)."""
    cross = [(f, a) for f in fixed for a in adaptive]
    return {
        "f_in_a": [_inside(f["p50"], a["ci"]) for f, a in cross],
        "f_in_a_iid": [_inside(f["p50"], a["iid"]) for f, a in cross],
        "a_in_f": [_inside(a["p50"], f["ci"]) for f, a in cross],
        "overlap": [_overlap(f["ci"], a["ci"]) for f, a in cross],
        "f_in_f": [
            _inside(f["p50"], g["ci"])
            for i, f in enumerate(fixed)
            for j, g in enumerate(fixed)
            if i != j
        ],
    }


def _row(name: str, fixed: list[dict[str, Any]], adaptive: list[dict[str, Any]]) -> str:
    meds = [f["p50"] for f in fixed]
    spread = statistics.stdev(meds) / statistics.fmean(meds) if len(meds) > 1 else 0.0
    half = [(a["ci"][1] - a["ci"][0]) / 2 / a["p50"] for a in adaptive if a["ci"]]
    checks = _pairs(fixed, adaptive)
    return (
        f"{name}: fixed {len(fixed)}x {statistics.fmean(f['seconds'] for f in fixed):.2f} s "
        f"p50 {' '.join(f'{m:.3f}' for m in meds)} (sd {spread:.1%}); adaptive "
        + " ".join(f"{a['n']}/{a['seconds']:.2f}s {a['p50']:.3f}" for a in adaptive)
        + f" (+-{statistics.fmean(half) if half else float('nan'):.1%}); fixed in adaptive CI "
        f"{sum(checks['f_in_a'])}/{len(checks['f_in_a'])}, "
        f"fixed in other fixed CI {sum(checks['f_in_f'])}/{len(checks['f_in_f'])}"
    )


def run(cycles: int = 2) -> list[Figure]:
    """Both figures from `cycles` ABBA rounds per zoo model (about 55 s at 2 cycles)."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        zoo = write_zoo(Path(tmp))
        for _ in range(cycles):
            for name, path in zoo.items():
                for rule in (FIXED, ADAPTIVE, ADAPTIVE, FIXED):  # ABBA: order balanced
                    kind = "adaptive" if rule.target_ci else "fixed"
                    runs.setdefault(name, {"fixed": [], "adaptive": []})[kind].append(
                        _doc(path, _settings(rule))
                    )
    fixed_s = sum(f["seconds"] for r in runs.values() for f in r["fixed"])
    adaptive_s = sum(a["seconds"] for r in runs.values() for a in r["adaptive"])
    rate, detail = _summary(runs, cycles)
    return [
        Figure("adaptive stopping: steady-state time adaptive / fixed", adaptive_s / fixed_s,
               1.0, True, detail),
        Figure("adaptive stopping: fixed medians inside the adaptive interval", rate["f_in_a"],
               0.95, False, detail),
    ]  # fmt: skip


def _summary(
    runs: dict[str, dict[str, list[dict[str, Any]]]], cycles: int
) -> tuple[dict[str, float], str]:
    """Agreement rates over all models' pairs, and the RESULTS detail text."""
    totals: dict[str, list[bool]] = {}
    for r in runs.values():
        for key, values in _pairs(r["fixed"], r["adaptive"]).items():
            totals.setdefault(key, []).extend(values)
    rate = {key: sum(v) / len(v) if v else float("nan") for key, v in totals.items()}
    bias = statistics.fmean(
        a["p50"] / f["p50"] - 1 for r in runs.values() for f in r["fixed"] for a in r["adaptive"]
    )
    adaptive = [a for r in runs.values() for a in r["adaptive"]]
    capped = sum(a["reason"] == "max seconds" for a in adaptive)
    detail = (
        f"ABBA x{cycles}, fresh session per run, {capped} of {len(adaptive)} adaptive runs "
        f"capped at 2 s. Fixed median inside the adaptive run's interval {rate['f_in_a']:.0%} "
        f"(independent-runs interval: {rate['f_in_a_iid']:.0%}); adaptive median inside the "
        f"fixed run's interval {rate['a_in_f']:.0%}; intervals overlap {rate['overlap']:.0%}; "
        f"baseline, one fixed run's median inside another fixed run's interval "
        f"{rate['f_in_f']:.0%}; mean adaptive/fixed median {bias:+.2%}. "
        + "; ".join(_row(name, r["fixed"], r["adaptive"]) for name, r in runs.items())
    )
    return rate, detail


def _settings(rule: StopRule) -> MeasureSettings:
    return MeasureSettings(session=SessionSettings(threads=1), warmup_runs=10,
                           warmup_seconds=0.3, stop=rule, power=False)  # fmt: skip
