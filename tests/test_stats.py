"""Statistics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.stats import median_ci_blocks, median_ci_ranks, percentile, runs_needed, summarize


def test_percentile_type7_by_hand() -> None:
    x = np.array([10.0, 20.0, 30.0, 40.0])
    # h = (n-1) q: q=0.5 -> 1.5 -> 20 + 0.5 * 10 = 25
    assert percentile(x, 0.5) == 25.0
    # q=0.9 -> h=2.7 -> 30 + 0.7 * 10 = 37
    assert percentile(x, 0.9) == pytest.approx(37.0)
    assert percentile(x, 0.0) == 10.0
    assert percentile(x, 1.0) == 40.0
    assert percentile(np.array([7.0]), 0.99) == 7.0


def test_percentile_matches_numpy_default() -> None:
    rng = np.random.default_rng(3)
    x = np.sort(rng.lognormal(size=1001))
    for q in (0.5, 0.9, 0.95, 0.99):
        assert percentile(x, q) == pytest.approx(float(np.percentile(x, q * 100)))


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        percentile(np.array([]), 0.5)
    with pytest.raises(ValueError):
        percentile(np.array([1.0]), 1.5)


def test_summarize_by_hand() -> None:
    # 1, 2, 3, 4, 5 ms in ns
    s = summarize(np.array([3, 1, 5, 2, 4]) * 1_000_000)
    assert s["n"] == 5
    assert s["min"] == 1.0 and s["max"] == 5.0
    assert s["mean"] == 3.0
    assert s["p50"] == 3.0
    assert s["p90"] == pytest.approx(4.6)  # h = 3.6 -> 4 + 0.6
    assert s["std"] == pytest.approx(math.sqrt(2.5))  # sample variance 10/4
    assert s["cv"] == pytest.approx(math.sqrt(2.5) / 3.0)
    assert s["mad"] == 1.0  # |x - 3| = 2,1,0,1,2 -> median 1
    assert s["robust_cv"] == pytest.approx(1.4826 / 3.0)
    assert s["median_ci95"] is None  # n=5 cannot reach 95 %


def test_summarize_single_value_has_no_spread() -> None:
    s = summarize([2_000_000])
    assert s["std"] is None and s["cv"] is None and s["p99"] == 2.0


def test_summarize_empty_fails() -> None:
    with pytest.raises(ValueError):
        summarize([])


def test_median_ci_ranks_small_n_by_hand() -> None:
    # n=6: P(B<=0) = 1/64 = 0.0156 <= 0.025, P(B<=1) = 7/64 > 0.025 -> [x1, x6]
    assert median_ci_ranks(6) == (0, 5)
    assert median_ci_ranks(5) is None
    # n=10: P(B<=1) = 11/1024 = 0.0107, P(B<=2) = 56/1024 = 0.0547 -> j=2 -> [x2, x9]
    assert median_ci_ranks(10) == (1, 8)


def test_median_ci_ranks_large_n_normal_branch_is_consistent() -> None:
    # Normal approximation: j ~ n/2 - 1.96 sqrt(n)/2 ; for n=10000 -> 4902
    lo, hi = median_ci_ranks(10_000)  # type: ignore[misc]
    assert 4899 <= lo + 1 <= 4903
    assert lo + hi == 10_000 - 1  # symmetric


def test_median_ci_brackets_the_median() -> None:
    rng = np.random.default_rng(0)
    s = summarize(rng.integers(1_000_000, 2_000_000, size=500))
    lo, hi = s["median_ci95"]
    assert lo <= s["p50"] <= hi


def test_runs_needed_by_hand() -> None:
    # ln(0.01)/ln(0.9) = 43.7 -> 44 ; ln(0.01)/ln(0.99) = 458.2 -> 459
    assert runs_needed(0.90, 0.99) == 44
    assert runs_needed(0.99, 0.99) == 459
    assert runs_needed(0.50, 0.99) == 7


def _ar1(rng: np.random.Generator, trials: int, n: int, phi: float) -> np.ndarray:
    """`trials` AR(1) series (rows) with unit innovations around 100: x[t] = phi x[t-1] + e[t]."""
    e = rng.normal(size=(trials, n))
    x = np.empty((trials, n))
    x[:, 0] = e[:, 0] / math.sqrt(1.0 - phi * phi)
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return 100.0 + x


def _iid_ci(x: np.ndarray) -> tuple[float, float]:
    ranks = median_ci_ranks(x.size)
    assert ranks is not None
    s = np.sort(x)
    return float(s[ranks[0]]), float(s[ranks[1]])


def test_block_ci_by_hand() -> None:
    # 50 runs, 10 blocks of 5. Blocks alternate 100 and 110 (block medians 100, 110, ...),
    # so sd(block medians) = 5.27; t(0.975, 9) = 2.262 -> half-width 2.262 * 5.27 / sqrt(10)
    # = 3.77 around the median 105, wider than nothing but narrower than the order
    # statistics' 100..110, which win.
    x = np.repeat([100.0, 110.0] * 5, 5)
    assert median_ci_blocks(x) == (100.0, 110.0)
    # A steady series: both are a point.
    assert median_ci_blocks(np.full(50, 7.0)) == (7.0, 7.0)
    assert median_ci_blocks(np.full(49, 7.0)) is None  # fewer than 5 runs per block


def test_block_ci_widens_with_a_drift() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 1.0, 2000)
    drifting = 100.0 + noise + np.linspace(0.0, 3.0, 2000)  # 3 % creep over the run
    lo, hi = median_ci_blocks(drifting) or (0.0, 0.0)
    ilo, ihi = _iid_ci(drifting)
    assert hi - lo > 2.0 * (ihi - ilo)


def test_block_ci_costs_little_width_for_iid_runs() -> None:
    """Never narrower than the order statistics; ~15-20 % wider on average (9 d.f. in sd)."""
    rng = np.random.default_rng(3)
    ratios = []
    for _ in range(100):
        x = 100.0 + rng.normal(size=2000)
        lo, hi = median_ci_blocks(x) or (0.0, 0.0)
        ilo, ihi = _iid_ci(x)
        ratios.append((hi - lo) / (ihi - ilo))
    assert min(ratios) >= 1.0
    assert float(np.mean(ratios)) < 1.3


def test_block_ci_keeps_coverage_near_95_percent_for_iid_runs() -> None:
    rng = np.random.default_rng(1)
    true_median = math.exp(0.0)  # lognormal(0, 0.3): skewed like latencies
    hits = 0
    trials = 600
    for _ in range(trials):
        ci = median_ci_blocks(rng.lognormal(0.0, 0.3, 200))
        assert ci is not None
        hits += ci[0] <= true_median <= ci[1]
    # the wider of two valid intervals: at least nominal, not wildly conservative
    assert 0.93 <= hits / trials <= 0.995


def test_block_ci_rescues_coverage_for_autocorrelated_runs() -> None:
    """AR(1) with phi 0.8: the order-statistic interval is ~3x too narrow."""
    rng = np.random.default_rng(2)
    iid_hits = block_hits = 0
    trials = 300
    for x in _ar1(rng, trials, 1000, 0.8):
        lo, hi = _iid_ci(x)
        iid_hits += lo <= 100.0 <= hi
        blo, bhi = median_ci_blocks(x) or (0.0, 0.0)
        block_hits += blo <= 100.0 <= bhi
    assert iid_hits / trials < 0.7
    assert block_hits / trials > 0.88


def test_summarize_reports_the_block_interval_in_time_order() -> None:
    ns = (np.repeat([100.0, 110.0] * 5, 5) * 1_000_000).astype(np.int64)
    s = summarize(ns)
    assert s["median_ci95_blocks"] == pytest.approx([100.0, 110.0])
    assert summarize(ns[:20])["median_ci95_blocks"] is None
