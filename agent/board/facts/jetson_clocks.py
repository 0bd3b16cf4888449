"""Whether `jetson_clocks` has pinned a Jetson's clocks.

jetson_clocks raises every CPU policy's and the GPU's minimum frequency to its maximum (the
maximum nvpmodel's mode allows), so DVFS can no longer lower them. Read (kHz, Hz for the GPU):
  /sys/devices/system/cpu/cpufreq/policy*/scaling_min_freq, scaling_max_freq
  /sys/class/devfreq/<addr>.<tegra gpu>/min_freq, max_freq
`jetson_clocks`: "on" when every one of them has min == max, "off" when none has, "partial"
otherwise (e.g. the CPU pinned by hand). `jetson_clocks --show` would say the same but needs
root, so it is not run. Reported on a Jetson only (/etc/nv_tegra_release): elsewhere min ==
max is a user's choice, which the `governors` field shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.board.facts.accelerators import gpu_devfreq
from agent.board.facts.base import Fact
from agent.board.facts.l4t import tegra_release
from agent.board.facts.policies import policy_dirs
from agent.probes.commands import CommandRunner
from agent.probes.sysfs import read_int


def _pinned(low: int | None, high: int | None) -> bool | None:
    return None if low is None or high is None else low == high


class JetsonClocks(Fact):
    """jetson_clocks state from the clocks' min and max."""

    name = "jetson_clocks"
    fields = ("jetson_clocks",)
    looks_for = (
        "/etc/nv_tegra_release, cpufreq/policy*/scaling_{min,max}_freq, "
        "devfreq/*.<tegra gpu>/{min,max}_freq (Jetson)"
    )

    @classmethod
    def read(cls, root: Path, runner: CommandRunner) -> dict[str, Any]:
        if tegra_release(root) is None:
            return {}
        states = [
            _pinned(read_int(p / "scaling_min_freq"), read_int(p / "scaling_max_freq"))
            for p in policy_dirs(root)
        ]
        states += [_pinned(read_int(g / "min_freq"), read_int(g / "max_freq"))
                   for g in gpu_devfreq(root)]  # fmt: skip
        known = [s for s in states if s is not None]
        if not known:
            return {}
        state = "on" if all(known) else "off" if not any(known) else "partial"
        return {"jetson_clocks": state}
