"""The cache-aware roofline: which roof (DRAM, L3, L2, L1 or peak) a point is judged against.

The idea of Intel Advisor's cache-aware roofline model: each memory level has its own
bandwidth roof. A point is first judged against DRAM. Only when it beats the DRAM roof (its
data cannot all have come from DRAM) is it judged against a cache roof: the level its working
set fits, then closer levels while it still beats them. Nothing is labelled bound by a roof
it beats; a point beating every calibrated roof is "above every roof" (the calibration is
probably low). slowdown = measured time / the fastest time the roof allows =
attainable / achieved GFLOP/s: >= 1 means slower than the roof allows, < 1 only "above every
roof". Units: GFLOP/s, GB/s (1e9), FLOP/byte, bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.report.numbers import number

DRAM = "DRAM"
ABOVE = "above every roof"
COMPUTE = "compute"
UNKNOWN = "cache sizes unknown: DRAM roof only"


@dataclass(frozen=True)
class Roof:
    """One bandwidth roof: its level, GB/s, and the level's size (None for DRAM)."""

    level: str
    bandwidth_gbs: float
    size_bytes: float | None = None


@dataclass(frozen=True)
class Judged:
    """A point's verdict against the roof it is judged by."""

    bound: str  # "compute", "memory (DRAM)", "memory (L2)", ... or ABOVE
    note: str | None
    roof_level: str
    slowdown: float  # attainable / achieved GFLOP/s (>= 1 unless ABOVE)
    attainable_gflops: float
    roof_bandwidth_gbs: float


def size_text(nbytes: float) -> str:
    """Bytes in binary units, as cache sizes are given: 48 KiB, 1.8 MiB."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes:.0f} B"


def calibration_roofs(cal: Any) -> list[Roof]:
    """The cache roofs of a calibration row (attributes or keys l<n>_bandwidth_gbs and
    l<n>_bytes), L1 first; a level missing either figure has no roof."""
    read = cal.get if isinstance(cal, Mapping) else lambda k: getattr(cal, k, None)
    roofs = []
    for n in (1, 2, 3):
        bw, size = number(read(f"l{n}_bandwidth_gbs")), number(read(f"l{n}_bytes"))
        if bw and size and bw > 0 and size > 0:
            roofs.append(Roof(f"L{n}", bw, size))
    return roofs


def judge(
    intensity: Any,
    achieved_gflops: Any,
    working_set_bytes: Any,
    peak_gflops: Any,
    dram_gbs: Any,
    caches: Sequence[Roof] = (),
    *,
    upper_bound: bool = False,
) -> Judged | None:
    """The verdict of a point (see the module docstring), or None when a figure is missing.
    `upper_bound`: the working set given is an upper bound (bytes summed over nodes)."""
    i, got = number(intensity), number(achieved_gflops)
    peak, bw, ws = number(peak_gflops), number(dram_gbs), number(working_set_bytes)
    if not (i and got and peak and bw) or min(i, got, peak, bw) <= 0:
        return None
    order = _order([Roof(DRAM, bw), *sorted(caches, key=lambda r: r.size_bytes or 0)], ws)
    for roof in order:
        attainable = min(peak, i * roof.bandwidth_gbs)
        if got <= attainable:
            bound = COMPUTE if i * roof.bandwidth_gbs >= peak else f"memory ({roof.level})"
            note = _note(roof, order, ws, caches, upper_bound)
            return Judged(bound, note, roof.level, attainable / got, attainable, roof.bandwidth_gbs)
    top = max(order, key=lambda r: r.bandwidth_gbs)
    attainable = min(peak, i * top.bandwidth_gbs)
    note = (
        f"slowdown {attainable / got:.2f} against the highest roof ({top.level}, peak "
        f"{peak:.1f} GFLOP/s): the calibration is probably low; recalibrate on a quiet board"
    )
    if not caches:
        note = f"{UNKNOWN}; {note}, or its data stayed in cache"
    return Judged(ABOVE, note, top.level, attainable / got, attainable, top.bandwidth_gbs)


def _order(roofs: list[Roof], ws: float | None) -> list[Roof]:
    """DRAM, then the smallest cache the working set fits, then the closer (smaller) ones; a
    working set that fits none (or is unknown) climbs from the largest cache."""
    dram, caches = roofs[0], roofs[1:]
    fits = [k for k, r in enumerate(caches) if ws is not None and ws <= (r.size_bytes or 0)]
    start = fits[0] if fits else len(caches) - 1
    return [dram, *reversed(caches[: start + 1])]


def _note(
    roof: Roof, order: list[Roof], ws: float | None, caches: Sequence[Roof], upper: bool
) -> str | None:
    """Why the point is judged against `roof` and not DRAM (None when it is DRAM)."""
    if roof.level == DRAM:
        return None
    shown = "unknown" if ws is None else ("≤ " if upper else "") + size_text(ws)
    first = order[1]
    if roof is first and ws is not None and ws <= (roof.size_bytes or 0):
        return (
            f"cache-resident: {shown} working set < {size_text(roof.size_bytes or 0)} {roof.level}"
        )
    if ws is not None and ws <= (first.size_bytes or 0):
        return (
            f"beats the {first.level} roof its {shown} working set fits: judged against "
            f"{roof.level} (data reused from a closer cache)"
        )
    if ws is None:
        return f"beats the DRAM roof, working set unknown: judged against {roof.level}"
    largest = max(caches, key=lambda r: r.size_bytes or 0)
    return (
        f"beats the DRAM roof though its {shown} working set exceeds "
        f"{size_text(largest.size_bytes or 0)} {largest.level}: partly cache-resident, judged "
        f"against {roof.level}"
    )


def classify(
    intensity: Any, achieved_gflops: Any, working_set_bytes: Any, calibration_row: Any
) -> tuple[str | None, str | None, str | None, float | None]:
    """(bound, bound_note, roof_level, slowdown) of one point (a model or an op row) against
    a calibration row with peak_gflops, bandwidth_gbs and the per-level cache columns; all
    None when it cannot be placed. For part O's op rows."""
    read = (
        calibration_row.get
        if isinstance(calibration_row, Mapping)
        else lambda k: getattr(calibration_row, k, None)
    )
    if calibration_row is None:
        return None, None, None, None
    judged = judge(
        intensity, achieved_gflops, working_set_bytes, read("peak_gflops"),
        read("bandwidth_gbs"), calibration_roofs(calibration_row),
    )  # fmt: skip
    if judged is None:
        return None, None, None, None
    return judged.bound, judged.note, judged.roof_level, judged.slowdown
