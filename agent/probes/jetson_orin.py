"""INA3221 on the mainline hwmon driver: Jetson Orin (JetPack 5/6) and any board using it.

Nodes under /sys/bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmon<N>/ (POWER.md, INA3221
mainline and Jetson Orin rows), channel c in 1..3:
  in<c>_label      rail name: VDD_IN, VDD_CPU_GPU_CV, VDD_SOC (Orin Nano/NX); "NC" = unused
  in<c>_input      bus voltage, mV
  curr<c>_input    current, mA
  in<c>_enable     0 when the channel is off
  update_interval  ms
There is no power file: P (mW) = mV × mA / 1000. Rails are found by label, never by the
hwmon number, which changes between boots (POWER.md, Orin row). NVML answers "not
supported" on Orin; these files are where the energy is ("Traps"). The headline is the
input rail (VDD_IN) alone: it feeds the other rails, so they are never added to it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from agent.probes.base import (
    POWER_GAUGE,
    Found,
    Rail,
    Reading,
    Source,
    make_reading,
    pick_input_rail,
)
from agent.probes.commands import CommandRunner
from agent.probes.hwmon import update_interval_s, vi_power
from agent.probes.nodes import list_dir, read_number, read_str
from agent.probes.sysfs import under

DRIVER = "/sys/bus/i2c/drivers/ina3221"


class JetsonOrin(Source):
    """Every INA3221 channel on the board (AGX Orin has two chips), one gauge source."""

    name = "ina3221"
    kind = POWER_GAUGE
    looks_for = f"INA3221 rails by label ({DRIVER}/*/hwmon/hwmon*/in*_label)"

    def __init__(self, channels: dict[str, tuple[Path, int]], interval_s: float | None) -> None:
        names = list(channels)
        headline = pick_input_rail(names)
        super().__init__(
            [
                Rail(n, f"{d}/in{c}_input (mV) × curr{c}_input (mA)")
                for n, (d, c) in channels.items()
            ],
            [headline] if headline else names,
            headline_rail=headline or "+".join(names),
            key="ina3221:" + ",".join(sorted({os.path.realpath(d) for d, _ in channels.values()})),
            caveat=None if headline else "no input rail: headline is the sum of monitored rails",
            update_interval_s=interval_s,
        )
        self.channels = channels

    @classmethod
    def detect(cls, root: Path, runner: CommandRunner) -> Found:
        channels: dict[str, tuple[Path, int]] = {}
        intervals: list[float] = []
        for chip in list_dir(under(root, DRIVER), "*-*"):
            for device in list_dir(chip / "hwmon", "hwmon*"):
                interval = update_interval_s(device)
                if interval is not None:
                    intervals.append(interval)
                for c in (1, 2, 3):
                    label, _ = read_str(device / f"in{c}_label")
                    enabled, _ = read_number(device / f"in{c}_enable")
                    if label == "NC" or enabled == 0:
                        continue
                    if read_number(device / f"in{c}_input")[0] is None and label is None:
                        continue
                    name = label or f"{chip.name}/in{c}"
                    channels[name if name not in channels else f"{chip.name}/{name}"] = (device, c)
        found = Found()
        if channels:
            found.sources.append(cls(channels, max(intervals) if intervals else None))
        return found

    def read(self) -> Reading:
        t0 = time.perf_counter_ns()
        results = {
            rail: vi_power(read_number(d / f"in{c}_input"), read_number(d / f"curr{c}_input"))
            for rail, (d, c) in self.channels.items()
        }
        return make_reading(t0, results)
