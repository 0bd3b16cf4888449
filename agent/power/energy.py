"""Energy and power over a time window from sampled sensors: pure functions over arrays.

Energy counters (RAPL, POWER.md Method 1): readings are unwrapped into cumulative energy,
each step taken modulo the counter's range, `(e1 - e0) mod max_energy_range_uj`; the
cumulative energy is then linearly interpolated at the window's edges between the two
samples that bracket each edge, so the window's energy does not depend on where the
sampler's ticks fell. Power gauges (Method 2): trapezoidal integral of W over the sample
timestamps, with P linearly interpolated at the edges. Timestamps are perf_counter_ns, the
clock the timing loop uses, so the steady-state window's bounds apply unchanged.

A window not fully bracketed by samples is integrated over the part that is, scaled to the
whole window, and `coverage` says how much that was; below MIN_COVERAGE nothing is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agent.probes.base import ENERGY_COUNTER, Kind, Rail

MIN_COVERAGE = 0.9


@dataclass(frozen=True)
class Samples:
    """Raw samples: perf_counter_ns stamps and, per rail, float64 values (NaN = gap)."""

    t_ns: np.ndarray
    values: dict[str, np.ndarray]


@dataclass(frozen=True)
class Integral:
    """One rail (or the headline) over a window. None = not measurable, never 0."""

    energy_j: float | None
    avg_w: float | None
    peak_w: float | None
    samples: int  # samples inside the window
    updates: int  # value changes seen inside the window
    coverage: float  # fraction of the window bracketed by samples


def counter_delta(e0: float, e1: float, wrap: float | None) -> float:
    """One counter difference corrected for wrap-around: (e1 - e0) mod wrap."""
    return (e1 - e0) % wrap if wrap else e1 - e0


def cumulative(values: np.ndarray, wrap: float | None) -> np.ndarray:
    """Counter readings -> energy since the first reading, each step taken mod `wrap`."""
    if values.size == 0:
        return values.astype(np.float64)
    steps = np.diff(values.astype(np.float64))
    if wrap:
        steps = np.mod(steps, wrap)
    return np.concatenate(([0.0], np.cumsum(steps)))


def series(samples: Samples, rails: Sequence[Rail], kind: Kind) -> tuple[np.ndarray, np.ndarray]:
    """(t_ns, value) of the sum of `rails` at the samples where every one of them was read.

    Counters are unwrapped rail by rail before they are added, since each wraps on its own.
    """
    mask = np.ones(samples.t_ns.shape, dtype=bool)
    for rail in rails:
        mask &= np.isfinite(samples.values[rail.name])
    total = np.zeros(int(mask.sum()))
    for rail in rails:
        kept = samples.values[rail.name][mask]
        total = total + (cumulative(kept, rail.wrap_j) if kind == ENERGY_COUNTER else kept)
    return samples.t_ns[mask], total


def integrate(
    t_ns: np.ndarray, values: np.ndarray, kind: Kind, start_ns: int, end_ns: int
) -> Integral:
    """Energy, average and peak power over [start_ns, end_ns] for one series."""
    empty = Integral(None, None, None, 0, 0, 0.0)
    if t_ns.size < 2 or end_ns <= start_ns:
        return empty
    lo, hi = max(start_ns, int(t_ns[0])), min(end_ns, int(t_ns[-1]))
    if hi <= lo:
        return empty
    inside = (t_ns >= start_ns) & (t_ns <= end_ns)
    updates = int(np.count_nonzero(np.diff(values[inside]))) if inside.any() else 0
    coverage = (hi - lo) / (end_ns - start_ns)
    t = (t_ns - t_ns[0]).astype(np.float64) / 1e9
    a, b = (lo - int(t_ns[0])) / 1e9, (hi - int(t_ns[0])) / 1e9
    if kind == ENERGY_COUNTER:
        e_a, e_b = np.interp([a, b], t, values)
        energy = float(e_b - e_a)
        dt = np.diff(t)
        ok = (dt > 0) & (t[1:] > a) & (t[:-1] < b)
        peak = float((np.diff(values)[ok] / dt[ok]).max()) if ok.any() else None
    else:
        inner = (t > a) & (t < b)
        pts_t = np.concatenate(([a], t[inner], [b]))
        pts_w = np.concatenate(
            (np.interp([a], t, values), values[inner], np.interp([b], t, values))
        )
        energy = float(np.sum((pts_w[1:] + pts_w[:-1]) / 2.0 * np.diff(pts_t)))
        peak = float(pts_w.max())
    if coverage < MIN_COVERAGE:
        return Integral(None, None, peak, int(inside.sum()), updates, coverage)
    avg = energy / (b - a)
    return Integral(
        avg * (end_ns - start_ns) / 1e9, avg, peak, int(inside.sum()), updates, coverage
    )


def observed_period_s(t_ns: np.ndarray, values: np.ndarray) -> float | None:
    """Median time between value changes: the sensor's refresh period as seen, in s."""
    changed = np.flatnonzero(np.diff(values)) + 1
    if changed.size < 2:
        return None
    return float(np.median(np.diff(t_ns[changed]))) / 1e9
