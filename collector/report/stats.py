"""Rank correlations and a power-law fit, in numpy only (no scipy on the collector).

Each returns None where the statistic is undefined (too few points, a constant input) rather
than a number that would look like a finding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_FIT_POINTS = 3


def rankdata(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (scipy's "average" method)."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size, dtype=float)
    sorted_x = x[order]
    start = 0
    for end in range(1, x.size + 1):
        if end == x.size or sorted_x[end] != sorted_x[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0  # mean of start+1 .. end
            start = end
    return ranks


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float | None:
    """Pearson's r, or None with fewer than 2 points or a constant input."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.size < 2 or a.size != b.size:
        return None
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(da @ da) * float(db @ db))
    return None if denom == 0 else float(np.clip((da @ db) / denom, -1.0, 1.0))


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float | None:
    """Spearman's rho: Pearson's r of the average ranks, so ties are handled."""
    if len(x) != len(y) or len(x) < 2:
        return None
    return pearson(rankdata(x), rankdata(y))


def kendall_tau_b(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float | None:
    """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y)).

    O(n^2) pairs, which is nothing for a fleet's few dozen models.
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.size < 2 or a.size != b.size:
        return None
    i, j = np.triu_indices(a.size, k=1)
    sx, sy = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    n0 = i.size
    ties_x, ties_y = int(np.sum(sx == 0)), int(np.sum(sy == 0))
    denom = math.sqrt(float(n0 - ties_x) * float(n0 - ties_y))
    return None if denom == 0 else float(np.sum(sx * sy) / denom)


@dataclass(frozen=True)
class PowerFit:
    """log(latency) = a + b * log(flops), natural logs; latency in ms, flops as counted."""

    a: float
    b: float
    r2: float | None
    n: int

    def predict(self, flops: float) -> float:
        """Latency in ms the fit expects at `flops`."""
        return math.exp(self.a + self.b * math.log(flops))


def power_law_fit(
    flops: Sequence[float] | np.ndarray, latency: Sequence[float] | np.ndarray
) -> PowerFit | None:
    """Least squares on the logs; None with fewer than 3 points, a non-positive value, or all
    points at one FLOP count (no slope can be fitted). R² is None when latency is constant."""
    x, y = np.asarray(flops, dtype=float), np.asarray(latency, dtype=float)
    if x.size < MIN_FIT_POINTS or x.size != y.size or np.any(x <= 0) or np.any(y <= 0):
        return None
    lx, ly = np.log(x), np.log(y)
    dx = lx - lx.mean()
    sxx = float(dx @ dx)
    if sxx == 0:
        return None
    b = float(dx @ (ly - ly.mean())) / sxx
    a = float(ly.mean() - b * lx.mean())
    resid = ly - (a + b * lx)
    ss_tot = float(np.sum((ly - ly.mean()) ** 2))
    r2 = None if ss_tot == 0 else 1.0 - float(resid @ resid) / ss_tot
    return PowerFit(a=a, b=b, r2=r2, n=int(x.size))


def residual_factor(fit: PowerFit, flops: float, latency: float) -> float:
    """Measured over predicted latency: 3.0 means three times slower than its FLOPs predict."""
    return latency / fit.predict(flops)
