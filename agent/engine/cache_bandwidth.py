"""Bandwidth of each data cache level, so the roofline has a roof per level (the idea of
Intel Advisor's cache-aware roofline model) and a model whose data stays in L2 is not judged
against DRAM.

Why numpy and not onnxruntime: an ORT run costs microseconds of fixed overhead, more than a
half-L1 working set takes to stream (16 KiB at 100 GB/s is 0.16 us), so an ORT kernel measures
its own overhead there. The kernel is a float32 dot product (np.dot -> BLAS sdot: two read
streams, no writes) over two arrays that together fill half the level, called `calls` times
in a row per timed batch, so they stay resident after the first call.

The fixed cost of one call (Python and numpy dispatch) is removed by timing two sizes, a
quarter and a half of the level, and taking bytes / time of the difference:
bandwidth = (bytes_half - bytes_quarter) * calls / (t_half - t_quarter). Best batch of each
size within the budget, as the rest of the calibration does. A level whose difference is not
positive (noise larger than the signal) gives None with a reason, never a guessed figure.

One thread: L1 and L2 are per core on every board we target, so these are per-core figures;
a multi-threaded model can exceed a per-core roof (the report then says "above every roof").
Units: decimal GB/s (1e9 byte/s); sizes in bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

BATCH_BYTES = 4 << 20  # bytes read per timed batch: long enough for perf_counter_ns
LEVELS = (1, 2, 3)  # the data cache levels that get a roof
METHOD = (
    "per data cache level from sysfs: one thread, float32 np.dot (BLAS sdot, 2 read streams) "
    "over two arrays filling a quarter and a half of the level, called back to back in "
    "batches of ~4 MiB; GB/s = extra bytes of the half-size batch / its extra time (the "
    "per-call overhead cancels); best batch of each size per round, best round kept"
)


def _batch(total_bytes: int, calls: int) -> tuple[Callable[[], object], int]:
    """`calls` dot products over two float32 arrays of total_bytes / 2 each, and the bytes
    the batch reads."""
    count = max(16, total_bytes // 8)
    a, b = np.full(count, 1.0, np.float32), np.full(count, 0.5, np.float32)

    def run() -> object:
        total = 0.0
        for _ in range(calls):
            total += float(np.dot(a, b))
        return total

    return run, 8 * count * calls


def _best(run: Callable[[], object], budget_s: float) -> float:
    """The fastest of runs within `budget_s` (at least one), in s."""
    best, deadline = float("inf"), time.perf_counter() + budget_s
    while best == float("inf") or time.perf_counter() < deadline:
        t0 = time.perf_counter_ns()
        run()
        best = min(best, (time.perf_counter_ns() - t0) / 1e9)
    return best


def level_probe(size_bytes: int) -> Callable[[float], float | None]:
    """A measurement of the GB/s a working set inside a cache of `size_bytes` streams at:
    called with a budget in s, it returns the figure, or None when noise hides it. Arrays are
    allocated and touched here, before any timing."""
    calls = max(1, BATCH_BYTES // max(1, size_bytes // 2))  # the same count for both sizes
    small, small_bytes = _batch(size_bytes // 4, calls)
    large, large_bytes = _batch(size_bytes // 2, calls)
    small(), large()  # first touch: page faults and cache fill are not timed

    def measure(budget_s: float) -> float | None:
        extra_s = _best(large, budget_s / 2) - _best(small, budget_s / 2)
        if extra_s <= 0 or large_bytes <= small_bytes:
            return None
        return (large_bytes - small_bytes) / extra_s / 1e9

    return measure


def measure_levels(
    probes: dict[int, Callable[[float], float | None]], seconds: float, rounds: int
) -> dict[str, Any]:
    """The calibration document's cache keys: per level n, l<n>_bandwidth_gbs (best round, or
    None when no round gave a figure), l<n>_bandwidth_gbs_runs (every round, None where noise
    hid it) and l<n>_bandwidth_spread; rounds interleave the levels like the rest of the
    calibration, each level given seconds / len(probes) over all rounds."""
    runs: dict[int, list[float | None]] = {level: [] for level in probes}
    for _ in range(rounds):
        for level, measure in probes.items():
            runs[level].append(measure(seconds / len(probes) / rounds))
    doc: dict[str, Any] = {}
    for level, values in runs.items():
        figures = [v for v in values if v is not None]
        doc[f"l{level}_bandwidth_gbs"] = max(figures) if figures else None
        doc[f"l{level}_bandwidth_gbs_runs"] = values
        doc[f"l{level}_bandwidth_spread"] = _spread(figures)
    return doc


def _spread(values: list[float]) -> float | None:
    """(best - worst) / best; None for fewer than two figures."""
    return (max(values) - min(values)) / max(values) if len(values) > 1 else None
