"""Power meters on hwmon: the INA2xx family (INA219/226/230 HATs and boards).

Nodes under /sys/class/hwmon/hwmonN/ (POWER.md, hwmon and ina2xx rows):
  name             chip name: ina219, ina226, ina230, ...  (how a device is matched)
  label            optional device-tree label (kernel >= 6.x), used as the rail name
  power1_input     µW  -- the trap: hwmon power is micro-, not milliwatts
  in1_input        bus voltage, mV
  curr1_input      current, mA
  update_interval  ms between conversions (INA226: 2-2253 ms)
Devices are matched by `name`, never by the hwmon index, which changes between boots
(POWER.md, Jetson Orin row). A chip without power1_input gives P = mV × mA / 1e6 W.
INA3221 (three channels, no power file) lives in jetson_orin.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from agent.probes.base import POWER_GAUGE, Found, Rail, Reading, Source, make_reading
from agent.probes.commands import CommandRunner
from agent.probes.nodes import list_dir, read_number, read_str
from agent.probes.sysfs import under

METERS = ("ina209", "ina219", "ina220", "ina226", "ina230", "ina231", "ina233", "ina238", "ina260")


def vi_power(
    bus_mv: tuple[int | None, str | None], curr_ma: tuple[int | None, str | None]
) -> tuple[float | None, str | None]:
    """P in W from a bus voltage in mV and a current in mA: mV × mA / 1e6 (a gap if either is)."""
    (mv, why_v), (ma, why_a) = bus_mv, curr_ma
    if mv is None or ma is None:
        return None, why_v or why_a
    return mv * ma / 1e6, None


def update_interval_s(device: Path) -> float | None:
    """The hwmon `update_interval` (ms) in seconds, or None when not exposed."""
    ms, _ = read_number(device / "update_interval")
    return ms / 1000.0 if ms is not None and ms > 0 else None


class HwmonMeter(Source):
    """One INA2xx power meter, measuring whatever it is wired into (usually a board input)."""

    name = "hwmon"
    kind = POWER_GAUGE
    looks_for = f"hwmon power meters (/sys/class/hwmon/hwmon*/name in {', '.join(METERS)})"

    def __init__(self, device: Path, chip: str, rail: str, has_power: bool) -> None:
        self.device = device
        self.has_power = has_power
        node = "power1_input (µW)" if self.has_power else "in1_input (mV) × curr1_input (mA)"
        super().__init__(
            [Rail(rail, f"{device}/{node}")],
            [rail],
            headline_rail=rail,
            key=os.path.realpath(device),
            caveat=f"{chip} power meter: measures only what it is wired into",
            update_interval_s=update_interval_s(device),
        )

    @classmethod
    def detect(cls, root: Path, runner: CommandRunner) -> Found:
        found = Found()
        for device in list_dir(under(root, "/sys/class/hwmon"), "hwmon*"):
            chip, _ = read_str(device / "name")
            if chip not in METERS:
                continue
            label, _ = read_str(device / "label")
            channel_label, _ = read_str(device / "power1_label")
            _, why = read_number(device / "power1_input")
            has_power = not (why or "").endswith(": missing")
            found.sources.append(cls(device, chip, label or channel_label or chip, has_power))
        return found

    def read(self) -> Reading:
        t0 = time.perf_counter_ns()
        rail = self.rails[0].name
        if self.has_power:
            micro, why = read_number(self.device / "power1_input")
            value = (micro / 1e6 if micro is not None else None, why)
        else:
            value = vi_power(
                read_number(self.device / "in1_input"), read_number(self.device / "curr1_input")
            )
        return make_reading(t0, {rail: value})
