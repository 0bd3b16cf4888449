"""Laptop battery discharge power, from the power_supply sysfs class.

Nodes under /sys/class/power_supply/BAT*/ (POWER.md, laptop battery row):
  status        Charging, Discharging, Full, Not charging, Unknown
  power_now     µW
  current_now   µA  (some firmware reports it negative while discharging)
  voltage_now   µV
  energy_now    µWh (not used: too coarse for a benchmark window)
Power is power_now when present, else |current_now| × voltage_now (µA × µV / 1e12 = W):
the two do not share a unit ("Traps": keep a current-only fixture). The figures describe the
system only while status is Discharging; otherwise the battery is present but unusable, and
a reading taken after the status changes is a gap. Batteries with scope "Device" (mice,
headsets) are skipped. Firmware refreshes these every 1-15 s, so the sampler reads at 2 Hz.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from agent.probes.base import POWER_GAUGE, Found, Rail, Reading, Source, Unusable, make_reading
from agent.probes.commands import CommandRunner
from agent.probes.nodes import list_dir, read_number, read_str
from agent.probes.sysfs import under

SUPPLIES = "/sys/class/power_supply"
CAVEAT = (
    "whole-system draw from the battery (display, radios, disks included); "
    "the firmware refreshes it every 1-15 s"
)


class Battery(Source):
    """Every discharging system battery; the headline is their sum (they do not overlap)."""

    name = "battery"
    kind = POWER_GAUGE
    looks_for = "a discharging battery (/sys/class/power_supply/BAT*/power_now or current_now)"

    def __init__(self, batteries: dict[str, tuple[Path, bool]]) -> None:
        names = list(batteries)
        super().__init__(
            [
                Rail(n, f"{d}/power_now (µW)" if p else f"{d}/current_now (µA) × voltage_now (µV)")
                for n, (d, p) in batteries.items()
            ],
            names,
            headline_rail="+".join(names),
            key="battery:" + ",".join(os.path.realpath(d) for d, _ in batteries.values()),
            caveat=CAVEAT,
            max_rate_hz=2.0,
        )
        self.batteries = batteries

    @classmethod
    def detect(cls, root: Path, runner: CommandRunner) -> Found:
        found = Found()
        usable: dict[str, tuple[Path, bool]] = {}
        for supply in list_dir(under(root, SUPPLIES)):
            kind, _ = read_str(supply / "type")
            scope, _ = read_str(supply / "scope")
            if not (supply.name.startswith("BAT") or kind == "Battery") or scope == "Device":
                continue
            status, why = read_str(supply / "status")
            has_power = read_number(supply / "power_now")[0] is not None
            has_iv = all(
                read_number(supply / f)[0] is not None for f in ("current_now", "voltage_now")
            )
            label = f"battery {supply.name}"
            if status != "Discharging":
                found.unusable.append(Unusable(label, _not_discharging(status, why)))
            elif not (has_power or has_iv):
                found.unusable.append(
                    Unusable(label, "neither power_now nor current_now and voltage_now readable")
                )
            else:
                usable[supply.name] = (supply, has_power)
        if usable:
            found.sources.append(cls(usable))
        return found

    def read(self) -> Reading:
        t0 = time.perf_counter_ns()
        return make_reading(t0, {n: _power(d, p) for n, (d, p) in self.batteries.items()})


def _not_discharging(status: str | None, why: str | None) -> str:
    state = repr(status) if status else f"unreadable ({why})"
    return (
        f"status is {state}, not 'Discharging': power_now and current_now describe the "
        "system only while it runs on battery; unplug the charger to measure"
    )


def _power(supply: Path, has_power: bool) -> tuple[float | None, str | None]:
    """W now, or a gap when the battery stopped discharging or a node failed."""
    status, why = read_str(supply / "status")
    if status != "Discharging":
        return None, f"{supply.name}: " + (f"status is now {status!r}" if status else str(why))
    if has_power:
        micro_w, why = read_number(supply / "power_now")
        return (micro_w / 1e6 if micro_w is not None else None), why
    micro_a, why_a = read_number(supply / "current_now")
    micro_v, why_v = read_number(supply / "voltage_now")
    if micro_a is None or micro_v is None:
        return None, why_a or why_v
    return abs(micro_a) * micro_v / 1e12, None
