"""INA3221 on the NVIDIA `ina3221x` iio driver: Jetson Nano, TX2, Xavier (JetPack <= 4).

Nodes under /sys/bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:device<K>/ (POWER.md, Jetson
JetPack <= 4 row), channel c in 0..2:
  rail_name_<c>        POM_5V_IN, POM_5V_GPU, POM_5V_CPU (Nano); VDD_IN, ... (TX2, Xavier)
  in_power<c>_input    mW   (not µW like hwmon)
  in_current<c>_input  mA
  in_voltage<c>_input  mV
The update rate is driver-defined and not exposed. The headline is the input rail
(POM_5V_IN / VDD_IN) alone, never summed with the rails it feeds. The Nano 2GB has no
INA3221 at all (same row): nothing is found there.
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
from agent.probes.hwmon import vi_power
from agent.probes.nodes import list_dir, read_number, read_str
from agent.probes.sysfs import under

DRIVER = "/sys/bus/i2c/drivers/ina3221x"


class JetsonIio(Source):
    """Every ina3221x rail on the board, one gauge source."""

    name = "ina3221x"
    kind = POWER_GAUGE
    looks_for = f"Jetson INA3221 rails, JetPack <= 4 ({DRIVER}/*/iio:device*/rail_name_*)"

    def __init__(self, channels: dict[str, tuple[Path, int, bool]]) -> None:
        names = list(channels)
        headline = pick_input_rail(names)
        super().__init__(
            [Rail(n, f"{d}/in_power{c}_input (mW)") for n, (d, c, _) in channels.items()],
            [headline] if headline else names,
            headline_rail=headline or "+".join(names),
            key="ina3221x:"
            + ",".join(sorted({os.path.realpath(d) for d, _, _ in channels.values()})),
            caveat=None if headline else "no input rail: headline is the sum of monitored rails",
        )
        self.channels = channels

    @classmethod
    def detect(cls, root: Path, runner: CommandRunner) -> Found:
        channels: dict[str, tuple[Path, int, bool]] = {}
        for chip in list_dir(under(root, DRIVER), "*-*"):
            for device in list_dir(chip, "iio:device*"):
                for c in (0, 1, 2):
                    label, _ = read_str(device / f"rail_name_{c}")
                    if label is None:
                        continue
                    _, why = read_number(device / f"in_power{c}_input")
                    has_power = not (why or "").endswith(": missing")
                    channels[label if label not in channels else f"{chip.name}/{label}"] = (
                        device,
                        c,
                        has_power,
                    )
        found = Found()
        if channels:
            found.sources.append(cls(channels))
        return found

    def read(self) -> Reading:
        t0 = time.perf_counter_ns()
        results: dict[str, tuple[float | None, str | None]] = {}
        for rail, (device, c, has_power) in self.channels.items():
            if has_power:
                mw, why = read_number(device / f"in_power{c}_input")
                results[rail] = (mw / 1e3 if mw is not None else None, why)
            else:
                results[rail] = vi_power(
                    read_number(device / f"in_voltage{c}_input"),
                    read_number(device / f"in_current{c}_input"),
                )
        return make_reading(t0, results)
