"""The roofline model for one measurement: what the device could attain, and how far off it was.

attainable = min(peak, intensity x bandwidth). Left of the ridge (peak / bandwidth FLOP/byte)
a kernel is bound by memory, so its FLOPs say little about its time; that is the report's point.
With per-level cache roofs (collector.report.roofs) a point that beats the DRAM roof is judged
against the cache its working set fits, never labelled bound by a roof it beats.
slowdown = measured / attainable time: >= 1 means slower than the roof allows, everywhere.
Units: GFLOP/s = 1e9 FLOP/s, GB/s = 1e9 byte/s, times in ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collector.report.numbers import number
from collector.report.roofs import Roof, judge

__all__ = ["Roof", "RooflinePoint", "achieved_gflops", "efficiency", "number", "place", "ridge"]


@dataclass(frozen=True)
class RooflinePoint:
    """One measurement placed on a device's roofline."""

    intensity: float  # FLOP/byte
    attainable_gflops: float
    bound: str  # "compute", "memory (DRAM)", "memory (L2)", ... or "above every roof"
    attainable_ms: float  # the fastest the roof it is judged against allows
    slowdown: float  # measured p50 / attainable_ms (>= 1 unless "above every roof")
    roof_level: str = "DRAM"  # the memory roof it is judged against
    bound_note: str | None = None  # why that roof, e.g. "cache-resident: ..."
    roof_bandwidth_gbs: float | None = None  # that roof's bandwidth


def achieved_gflops(flops: Any, time_ms: Any) -> float | None:
    """FLOPs per second of a measurement, in GFLOP/s; None when either side is missing."""
    f, t = number(flops), number(time_ms)
    return f / (t * 1e6) if f is not None and t is not None and t > 0 else None


def efficiency(achieved: float | None, peak_gflops: Any) -> float | None:
    """Achieved over calibrated peak FLOP/s (0..1); None without a calibration."""
    peak = number(peak_gflops)
    return achieved / peak if achieved is not None and peak else None


def ridge(peak_gflops: Any, bandwidth_gbs: Any) -> float | None:
    """The intensity (FLOP/byte) where memory stops being the limit."""
    peak, bw = number(peak_gflops), number(bandwidth_gbs)
    return peak / bw if peak and bw else None


def place(
    flops: Any,
    nbytes: Any,
    time_ms: Any,
    peak_gflops: Any,
    bandwidth_gbs: Any,
    *,
    caches: Sequence[Roof] = (),
    working_set: Any = None,
    upper_bound: bool = False,
) -> RooflinePoint | None:
    """Place a measurement of `flops` moving `nbytes` in `time_ms` on the roofline, or None
    when any input is missing or zero (no calibration, uncounted model, no bytes). `caches`
    are the cache roofs (roofs.calibration_roofs) and `working_set` the bytes it touches
    (an upper bound when `upper_bound`); without them only the DRAM roof judges."""
    f, b, t = number(flops), number(nbytes), number(time_ms)
    peak, bw = number(peak_gflops), number(bandwidth_gbs)
    if not (f and b and t and peak and bw) or min(f, b, t, peak, bw) < 0:
        return None
    intensity = f / b
    judged = judge(intensity, f / (t * 1e6), working_set, peak, bw, caches, upper_bound=upper_bound)
    if judged is None:
        return None
    return RooflinePoint(
        intensity=intensity,
        attainable_gflops=judged.attainable_gflops,
        bound=judged.bound,
        attainable_ms=f / (judged.attainable_gflops * 1e6),
        slowdown=judged.slowdown,
        roof_level=judged.roof_level,
        bound_note=judged.note,
        roof_bandwidth_gbs=judged.roof_bandwidth_gbs,
    )
