"""The `power` field of a result: per-rail and headline power over a window, with warnings.

Gross energy is the headline's energy over the window; net energy subtracts the idle
baseline, `gross - idle_w × window_s` (POWER.md Method 4). A window holding fewer than ten
sensor updates is flagged (Method 3, and "Traps"), and every gap inside it is listed with
its reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from agent.power.energy import Integral, Samples, integrate, observed_period_s, series
from agent.probes.base import ENERGY_COUNTER, POWER_GAUGE, Source

MIN_UPDATES = 10
MAX_GAP_LINES = 10


class Gap(NamedTuple):
    """A rail that could not be read at t_ns, and why."""

    t_ns: int
    rail: str
    reason: str


def headline(source: Source, samples: Samples, start_ns: int, end_ns: int) -> Integral:
    """The headline (one rail, or a sum of non-overlapping rails) over the window."""
    rails = [r for r in source.rails if r.name in source.headline]
    t, v = series(samples, rails, source.kind)
    return _unless_frozen(source, integrate(t, v, source.kind, start_ns, end_ns), start_ns, end_ns)


def counter_frozen(source: Source, res: Integral, window_s: float) -> bool:
    """An energy counter that never changed while it should have updated many times: a VM
    that exposes RAPL without updating it, or a stuck sensor. Its 0 J is not a measurement."""
    declared = source.update_interval_s
    long_enough = declared is None or window_s >= MIN_UPDATES * declared
    return (
        source.kind == ENERGY_COUNTER
        and res.updates == 0
        and res.samples >= MIN_UPDATES
        and long_enough
    )


def _unless_frozen(source: Source, res: Integral, start_ns: int, end_ns: int) -> Integral:
    if not counter_frozen(source, res, (end_ns - start_ns) / 1e9):
        return res
    return replace(res, energy_j=None, avg_w=None, peak_w=None)


def quality_warnings(source: Source, head: Integral, window_s: float, what: str) -> list[str]:
    """Too few sensor updates or samples, or a window the samples do not cover."""
    out = []
    if counter_frozen(source, head, window_s):
        out.append(
            f"{what}: the energy counter did not change in {head.samples} samples over "
            f"{window_s:.1f} s: it is frozen (RAPL exposed by a VM is, often), so no energy "
            "is reported; check `flopgap-agent doctor` on this board"
        )
        return out
    if head.energy_j is None:
        out.append(f"{what}: no energy: samples cover {head.coverage:.0%} of the window")
    elif head.coverage < 0.999:
        out.append(f"{what}: samples cover {head.coverage:.1%} of the window; scaled to it")
    declared = source.update_interval_s
    updates = window_s / declared if declared else float(head.updates)
    if updates < MIN_UPDATES:
        out.append(
            f"{what}: the window holds about {updates:.0f} sensor updates (fewer than "
            f"{MIN_UPDATES}): energy is unreliable; run the loop longer (POWER.md Method 3)"
        )
    if source.kind == POWER_GAUGE and head.samples < MIN_UPDATES:
        out.append(f"{what}: only {head.samples} power samples inside the window")
    return out


def gap_lines(gaps: Sequence[Gap], start_ns: int, end_ns: int) -> list[str]:
    """One line per (rail, reason) of the gaps inside the window, most frequent first."""
    counts = Counter((g.rail, g.reason) for g in gaps if start_ns <= g.t_ns <= end_ns)
    lines = [
        f"gap: {rail}: {n} sample(s) missing ({reason})"
        for (rail, reason), n in counts.most_common(MAX_GAP_LINES)
    ]
    if len(counts) > MAX_GAP_LINES:
        lines.append(f"gap: {len(counts) - MAX_GAP_LINES} more kinds of gap not listed")
    return lines


def build(
    source: Source,
    samples: Samples,
    gaps: Sequence[Gap],
    window: tuple[int, int],
    iterations: int,
    idle_w: float | None,
    notes: Sequence[str] = (),
    throttle: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON-ready power result for the perf_counter_ns window (start_ns, end_ns)."""
    start_ns, end_ns = window
    window_s = (end_ns - start_ns) / 1e9
    rails = {}
    for rail in source.rails:
        t, v = series(samples, [rail], source.kind)
        res = _unless_frozen(source, integrate(t, v, source.kind, start_ns, end_ns), start_ns,
                             end_ns)  # fmt: skip
        rails[rail.name] = {"avg_w": res.avg_w, "peak_w": res.peak_w}
    head = headline(source, samples, start_ns, end_ns)
    warnings = quality_warnings(source, head, window_s, "window")
    period_s = source.update_interval_s
    if period_s is None:
        t, v = series(samples, [r for r in source.rails if r.name in source.headline], source.kind)
        period_s = observed_period_s(t, v)
        warnings.append("sensor update interval not exposed: sensor_period_ms is observed")
    warnings += gap_lines(gaps, start_ns, end_ns)
    warnings += list(notes)
    energy = head.energy_j
    per_inf = energy / iterations if energy is not None and iterations > 0 else None
    net = None
    if per_inf is not None and energy is not None and idle_w is not None:
        net = (energy - idle_w * window_s) / iterations
    result: dict[str, Any] = {
        "source": source.name,
        "rails": rails,
        "avg_w": head.avg_w,
        "peak_w": head.peak_w,
        "idle_w": idle_w,
        "energy_j": energy,
        "energy_j_per_inference": per_inf,
        "net_energy_j_per_inference": net,
        "samples": head.samples,
        "sensor_period_ms": period_s * 1000.0 if period_s is not None else None,
        "headline_rail": source.headline_rail,
        "caveat": source.caveat,
        "warnings": warnings,
    }
    if throttle is not None:
        result["throttle"] = throttle
    return result
