"""Latency statistics as pure functions over nanosecond arrays.

Percentile definition (one, used everywhere): linear interpolation between the two closest
ranks of the sorted sample, i.e. Hyndman & Fan type 7 (numpy's default). For n sorted values
x[0..n-1] and a quantile q in [0, 1], h = (n - 1) * q and
P(q) = x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)]).

Spread is given two ways: cv = std / mean (sensitive to a few slow outliers), and
robust_cv = 1.4826 * MAD / median, which equals cv for normal data but ignores rare outliers;
the tail is reported separately by p99 and max.

The 95 % confidence interval of the median is distribution-free: the order statistics
[x_(j), x_(n-j+1)] (1-based) with j the largest rank such that P(B <= j - 1) <= 0.025 for
B ~ Binomial(n, 1/2). Latency distributions are skewed and multi-modal, so no normal
assumption is made about the data themselves.

That interval assumes independent runs. Measured latency is not: it is autocorrelated and
drifts by 1-3 % over a few seconds (clocks, caches, other load), and an interval that ignores
this is too narrow, so a short run's median falls outside a longer run's interval far more
often than 5 % of the time. `median_ci_blocks` therefore also estimates the median's
uncertainty from batch medians: the time-ordered runs are cut into contiguous blocks, and the
spread of the blocks' medians (Student t, blocks - 1 degrees of freedom) gives a half-width
that grows when the series drifts. The reported interval is the wider of the two, side by side.
It covers this run of this session only: a fresh session of the same model lands at other
addresses and differs by ~1 % (sd) more, which no within-run interval can see.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)
PERCENTILE_DEFINITION = "linear interpolation between closest ranks (Hyndman-Fan type 7)"
NS_PER_MS = 1_000_000.0
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation

# Above this sample size the binomial CDF is replaced by its normal approximation,
# which is accurate to well under one rank there.
_EXACT_BINOMIAL_MAX_N = 2000

# Batch medians: how many contiguous time blocks, and the fewest runs each block must hold.
CI_BLOCKS = 10
MIN_BLOCK_RUNS = 5
# Two-sided 97.5 % points of Student's t for 1..30 degrees of freedom (a table, not scipy).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def percentile(sorted_values: np.ndarray, q: float) -> float:
    """Type-7 percentile of an already sorted 1-D array; q is a fraction in [0, 1]."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} outside [0, 1]")
    h = (n - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    x_lo = float(sorted_values[lo])
    return x_lo + (h - lo) * (float(sorted_values[hi]) - x_lo)


def _binomial_half_cdf(k: int, n: int) -> float:
    """P(B <= k) for B ~ Binomial(n, 1/2), exact for small n, normal approximation above."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if n > _EXACT_BINOMIAL_MAX_N:
        z = (k + 0.5 - n / 2.0) / (math.sqrt(n) / 2.0)
        return 0.5 * math.erfc(-z / math.sqrt(2.0))
    log_half_n = n * math.log(0.5)
    total = 0.0
    log_pmf = log_half_n
    for i in range(k + 1):
        total += math.exp(log_pmf)
        log_pmf += math.log((n - i) / (i + 1))
    return min(total, 1.0)


def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int] | None:
    """0-based ranks (lo, hi) of the order statistics bounding the median at `confidence`.

    None when the sample is too small for any interval to reach that confidence (n < 6 at 95 %).
    """
    alpha_half = (1.0 - confidence) / 2.0
    if n < 1 or _binomial_half_cdf(0, n) > alpha_half:
        return None
    if n > _EXACT_BINOMIAL_MAX_N:
        z = math.sqrt(2.0) * _erfinv(1.0 - 2.0 * alpha_half)
        j = math.floor(n / 2.0 - z * math.sqrt(n) / 2.0)
        while _binomial_half_cdf(j, n) <= alpha_half:
            j += 1
        while j > 0 and _binomial_half_cdf(j - 1, n) > alpha_half:
            j -= 1
    else:  # one cumulative pass, O(j): the adaptive check calls this every 0.2 s
        j, total, log_pmf = 0, 0.0, n * math.log(0.5)
        while True:
            total += math.exp(log_pmf)
            if total > alpha_half:
                break
            log_pmf += math.log((n - j) / (j + 1))
            j += 1
    # j is now the largest 1-based rank with P(B <= j - 1) <= alpha/2.
    return j - 1, n - j


def _erfinv(y: float) -> float:
    """Inverse error function by Newton's method; enough for confidence levels."""
    x = 0.0
    for _ in range(60):
        err = math.erf(x) - y
        x -= err / (2.0 / math.sqrt(math.pi) * math.exp(-x * x))
        if abs(err) < 1e-15:
            break
    return x


def median_ci_blocks(
    values: np.ndarray | Sequence[float], blocks: int = CI_BLOCKS
) -> tuple[float, float] | None:
    """95 % CI of the median of time-ordered `values` that widens when they drift (same unit).

    The wider, on each side, of the order-statistic interval (valid for independent runs)
    and median +- t(0.975, blocks - 1) * sd(block medians) / sqrt(blocks), where the blocks
    are `blocks` contiguous runs of the series in time order. For independent runs the two
    agree; for an autocorrelated or drifting series the block medians disagree and the
    interval widens. None when there are fewer than MIN_BLOCK_RUNS runs per block.
    """
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    ranks = median_ci_ranks(n)
    if ranks is None or blocks < 2 or n < blocks * MIN_BLOCK_RUNS:
        return None
    part = np.partition(x, [ranks[0], (n - 1) // 2, n // 2, ranks[1]])
    median = 0.5 * (float(part[(n - 1) // 2]) + float(part[n // 2]))
    block_medians = [float(np.median(b)) for b in np.array_split(x, blocks)]
    t = _T975[min(blocks - 1, len(_T975)) - 1]
    half = t * float(np.std(block_medians, ddof=1)) / math.sqrt(blocks)
    return min(float(part[ranks[0]]), median - half), max(float(part[ranks[1]]), median + half)


def runs_needed(quantile: float, confidence: float) -> int:
    """Fewest runs so that the sample maximum bounds the `quantile` with `confidence`.

    From P(max < true quantile) = quantile^n: n >= ln(1 - confidence) / ln(quantile).
    p90 at 99 % needs 44 runs; p99 at 99 % needs 459.
    """
    return math.ceil(math.log(1.0 - confidence) / math.log(quantile))


def summarize(latencies_ns: np.ndarray | Sequence[int]) -> dict[str, Any]:
    """Latency statistics in milliseconds: min, mean, std, cv, p50-p99, max, n, median_ci95.

    std is the sample standard deviation (n - 1); cv = std / mean. Both are None for n < 2.
    mad is the median absolute deviation (ms); robust_cv = 1.4826 * mad / median.
    median_ci95 is [lo, hi] in ms, or None when n is too small for a 95 % interval; it
    assumes independent runs. median_ci95_blocks is the interval that also widens when the
    time-ordered runs drift (median_ci_blocks), or None below CI_BLOCKS * MIN_BLOCK_RUNS runs;
    pass the latencies in the order they were measured.
    """
    in_order = np.asarray(latencies_ns, dtype=np.int64)
    values = np.sort(in_order)
    n = int(values.size)
    if n == 0:
        raise ValueError("no latencies to summarize")
    ms = values.astype(np.float64) / NS_PER_MS
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if n >= 2 else None
    out: dict[str, Any] = {f"p{p}": percentile(ms, p / 100.0) for p in PERCENTILES}
    ranks = median_ci_ranks(n)
    median = out["p50"]
    mad = float(np.median(np.abs(ms - median)))
    blocks = median_ci_blocks(in_order.astype(np.float64) / NS_PER_MS)
    out.update(
        {
            "mean": mean,
            "std": std,
            "cv": (std / mean) if std is not None and mean > 0 else None,
            "mad": mad,
            "robust_cv": (MAD_TO_SIGMA * mad / median) if median > 0 else None,
            "min": float(ms[0]),
            "max": float(ms[-1]),
            "n": n,
            "median_ci95": None if ranks is None else [float(ms[ranks[0]]), float(ms[ranks[1]])],
            "median_ci95_blocks": None if blocks is None else [blocks[0], blocks[1]],
        }
    )
    return out
