"""The kernel cpufreq governor of every policy (agent.board.facts.policies).

Descriptor field `governors`: "governor:CPUs" per group of policies with the same governor,
";"-separated, e.g. "schedutil:0-3;performance:4-7" (a big.LITTLE board with its big cluster
on `performance`). Grouping keeps a 128-CPU server with one policy per CPU inside the wire's
256-character limit for a descriptor string.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.board.facts.base import Fact
from agent.board.facts.policies import cpu_ranges, policy_dirs, related_cpus
from agent.probes.commands import CommandRunner
from agent.probes.sysfs import read_text

MAX_CHARS = 256  # shared.protocol.DEVICE: a descriptor string's limit


class Governors(Fact):
    """scaling_governor of each cpufreq policy."""

    name = "governors"
    fields = ("governors",)
    looks_for = "/sys/devices/system/cpu/cpufreq/policy*/scaling_governor"

    @classmethod
    def read(cls, root: Path, runner: CommandRunner) -> dict[str, Any]:
        groups: dict[str, list[int]] = {}
        for policy in policy_dirs(root):
            governor = read_text(policy / "scaling_governor")
            if governor:
                groups.setdefault(governor, []).extend(related_cpus(policy))
        if not groups:
            return {}
        ordered = sorted(groups.items(), key=lambda item: min(item[1]))
        text = ";".join(f"{gov}:{cpu_ranges(cpus)}" for gov, cpus in ordered)
        return {"governors": text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 3] + "..."}
