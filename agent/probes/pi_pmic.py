"""Raspberry Pi 5 PMIC rails, throttle flags and SoC temperature, through `vcgencmd`.

Commands (POWER.md, Raspberry Pi rows; they need /dev/vcio, group `video`):
  vcgencmd pmic_read_adc   one line per ADC channel, e.g.
                             VDD_CORE_A current(7)=0.81262990A     A
                             VDD_CORE_V volt(15)=0.88187950V       V
                           rail power = V × A, for rails with both channels (EXT5V_V and
                           BATT_V have no current channel and are skipped)
  vcgencmd get_throttled   throttled=0x50005: bits 0-3 under-voltage, ARM frequency capped,
                           throttled, soft temperature limit, now; bits 16-19 the same flags
                           "has occurred since boot"
  vcgencmd measure_temp    temp=48.8'C
Caveat (POWER.md, Pi 5 caveat row): there is no input-current channel, so the sum of the
rails misses the PMIC's losses and the 5 V peripherals: it is never board power. One
subprocess per read, so a few Hz at most; the Pi 4 and earlier have no PMIC ADC.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from agent.probes.base import POWER_GAUGE, Found, Rail, Reading, Source, Unusable
from agent.probes.commands import Command, CommandRunner

PMIC_READ_ADC = Command("vcgencmd_pmic_read_adc", ("vcgencmd", "pmic_read_adc"))
GET_THROTTLED = Command("vcgencmd_get_throttled", ("vcgencmd", "get_throttled"))
MEASURE_TEMP = Command("vcgencmd_measure_temp", ("vcgencmd", "measure_temp"))
CAVEAT = "sum of SoC rails, not board power (misses PMIC losses and 5 V peripherals)"
FLAGS = ("under_voltage", "arm_freq_capped", "throttled", "soft_temp_limit")
_ADC = re.compile(r"^\s*(\S+)_([AV]) (?:current|volt)\(\d+\)=(-?[\d.]+)[AV]\s*$", re.M)
_THROTTLED = re.compile(r"throttled=(0x[0-9a-fA-F]+)")
_TEMP = re.compile(r"temp=(-?[\d.]+)'C")
_VIDEO_HINT = "add the user to group video: sudo usermod -aG video $USER, then log in again"


def parse_pmic(text: str) -> dict[str, float]:
    """Rail name -> W (V × A) from `vcgencmd pmic_read_adc` output."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for rail, unit, value in _ADC.findall(text):
        (amps if unit == "A" else volts)[rail] = float(value)
    return {rail: volts[rail] * amps[rail] for rail in amps if rail in volts}


def decode_throttled(value: int) -> dict[str, list[str]]:
    """Names of the flags set now (bits 0-3) and since boot (bits 16-19)."""
    return {
        "now": [name for bit, name in enumerate(FLAGS) if value >> bit & 1],
        "since_boot": [name for bit, name in enumerate(FLAGS) if value >> (16 + bit) & 1],
    }


def parse_throttled(text: str) -> dict[str, Any] | None:
    """`throttled=0x50005` -> {"raw": "0x50005", "now": [...], "since_boot": [...]}."""
    match = _THROTTLED.search(text)
    if match is None:
        return None
    return {"raw": match[1], **decode_throttled(int(match[1], 16))}


def parse_temp(text: str) -> float | None:
    """`temp=48.8'C` -> 48.8 (°C)."""
    match = _TEMP.search(text)
    return float(match[1]) if match else None


class PiPmic(Source):
    """Pi 5 PMIC rails (W = V × A); headline is their sum, with the caveat above."""

    name = "pi5-pmic"
    kind = POWER_GAUGE
    looks_for = "Raspberry Pi 5 PMIC rails (vcgencmd pmic_read_adc)"

    def __init__(self, rails: list[str], runner: CommandRunner) -> None:
        super().__init__(
            [Rail(r, f"vcgencmd pmic_read_adc {r}_V (V) × {r}_A (A)") for r in rails],
            rails,
            headline_rail="sum of SoC rails",
            key="pi5-pmic",
            caveat=CAVEAT,
            max_rate_hz=5.0,
        )
        self.runner = runner

    @classmethod
    def detect(cls, root: Path, runner: CommandRunner) -> Found:
        out = runner.run(PMIC_READ_ADC)
        if out.missing:
            return Found()
        if out.text is None:
            return Found(
                unusable=[
                    Unusable(
                        cls.name,
                        f"vcgencmd pmic_read_adc failed: {out.error}; "
                        f"if /dev/vcio is not readable, {_VIDEO_HINT}",
                    )
                ]
            )
        rails = list(parse_pmic(out.text))
        if not rails:
            return Found(
                unusable=[
                    Unusable(
                        cls.name,
                        "vcgencmd pmic_read_adc reported no rails (Pi 4 "
                        "and earlier have no PMIC ADC: use an INA219/INA226 HAT)",
                    )
                ]
            )
        return Found(sources=[cls(rails, runner)])

    def read(self) -> Reading:
        t0 = time.perf_counter_ns()
        out = self.runner.run(PMIC_READ_ADC)
        t_ns = (t0 + time.perf_counter_ns()) // 2
        if out.text is None:
            return Reading(t_ns, {}, {r.name: f"pmic_read_adc: {out.error}" for r in self.rails})
        watts = parse_pmic(out.text)
        values = {r.name: watts[r.name] for r in self.rails if r.name in watts}
        gaps = {r.name: "pmic_read_adc lacks this rail" for r in self.rails if r.name not in watts}
        return Reading(t_ns, values, gaps)

    def status(self) -> dict[str, Any] | None:
        """Throttle flags and SoC temperature (°C) now; a failed command is a None field."""
        throttled = self.runner.run(GET_THROTTLED)
        temp = self.runner.run(MEASURE_TEMP)
        return {
            "throttled": parse_throttled(throttled.text) if throttled.text else None,
            "temp_c": parse_temp(temp.text) if temp.text else None,
        }
