"""A Raspberry Pi's throttle flags, now and since boot (`vcgencmd get_throttled`).

The bits are decoded by agent.probes.pi_pmic.parse_throttled (bits 0-3 now, 16-19 since boot:
under_voltage, arm_freq_capped, throttled, soft_temp_limit). Fields: `throttled` the raw
value ("0x50005"), `throttled_now` and `throttled_since_boot` the names of the flags set
(an empty list when none is). A result taken after an under-voltage since boot is from a board
that was starved of power at some point: the descriptor keeps that history beside the numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.board.facts.base import Fact
from agent.probes.commands import CommandRunner
from agent.probes.pi_pmic import GET_THROTTLED, parse_throttled


class PiThrottled(Fact):
    """get_throttled flags."""

    name = "pi_throttled"
    fields = ("throttled", "throttled_now", "throttled_since_boot")
    looks_for = "vcgencmd get_throttled (Raspberry Pi, group video)"

    @classmethod
    def read(cls, root: Path, runner: CommandRunner) -> dict[str, Any]:
        out = runner.run(GET_THROTTLED)
        flags = parse_throttled(out.text) if out.text else None
        if flags is None:
            return {}
        return {
            "throttled": flags["raw"],
            "throttled_now": flags["now"],
            "throttled_since_boot": flags["since_boot"],
        }
