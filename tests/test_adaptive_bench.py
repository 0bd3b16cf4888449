"""The adaptive-stopping bench's agreement checks, on hand-made run summaries."""

from __future__ import annotations

from typing import Any

from bench.adaptive_stopping import _pairs, _summary


def _run(p50: float, lo: float, hi: float, reason: str = "x") -> dict[str, Any]:
    return {"p50": p50, "n": 100, "ci": [lo, hi], "iid": [p50, p50], "seconds": 1.0,
            "reason": reason}  # fmt: skip


def test_pairs_count_every_fixed_adaptive_and_fixed_fixed_pair() -> None:
    fixed = [_run(10.0, 9.9, 10.1), _run(10.5, 10.4, 10.6)]
    adaptive = [_run(10.05, 9.95, 10.15), _run(11.0, 10.9, 11.1)]
    checks = _pairs(fixed, adaptive)
    # 10.0 is inside [9.95, 10.15]; nothing else lies inside an adaptive interval
    assert checks["f_in_a"] == [True, False, False, False]
    assert checks["f_in_a_iid"] == [False] * 4  # the point intervals catch nothing
    assert checks["a_in_f"] == [True, False, False, False]
    assert checks["overlap"] == [True, False, False, False]
    assert checks["f_in_f"] == [False, False]  # 10.5 not in [9.9, 10.1], 10.0 not in [10.4, ..]


def test_summary_rates_can_fail() -> None:
    runs = {"m": {"fixed": [_run(10.0, 9.9, 10.1)] * 2,
                  "adaptive": [_run(12.0, 11.9, 12.1, "max seconds")] * 2}}  # fmt: skip
    rate, detail = _summary(runs, 1)
    assert rate["f_in_a"] == 0.0 and rate["f_in_f"] == 1.0
    assert "2 of 2 adaptive runs capped" in detail
