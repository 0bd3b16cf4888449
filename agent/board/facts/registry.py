"""The ordered list of descriptor probes and the one place their fields are merged.

`describe_facts(root, runner)` runs every probe; every field of every probe is in the result,
None where the board does not have it (or it could not be read), and `missing` says what was
looked for. The descriptor (agent.board.device.describe) takes the values; `flopgap-agent
doctor` shows both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.board.facts.accelerators import Accelerators
from agent.board.facts.base import Fact
from agent.board.facts.cache_sizes import CacheSizes
from agent.board.facts.governors import Governors
from agent.board.facts.isa import IsaFlags
from agent.board.facts.jetson_clocks import JetsonClocks
from agent.board.facts.l4t import L4tRelease
from agent.board.facts.nvpmodel import NvpModel
from agent.board.facts.pi_firmware import PiFirmware
from agent.board.facts.pi_throttled import PiThrottled
from agent.board.facts.power_supply import PowerSupply
from agent.probes.commands import CommandRunner

FACTS: tuple[type[Fact], ...] = (
    NvpModel,
    L4tRelease,
    JetsonClocks,
    Accelerators,
    PiFirmware,
    PiThrottled,
    CacheSizes,
    IsaFlags,
    PowerSupply,
    Governors,
)


@dataclass
class Facts:
    """Every descriptor field (None when missing), and for each missing one what was tried."""

    values: dict[str, Any] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


def describe_facts(root: Path | str, runner: CommandRunner) -> Facts:
    """Run every probe in FACTS under `root`; a probe that fails on a malformed tree leaves
    its fields missing with the reason, and never hides the others."""
    facts = Facts()
    for probe in FACTS:
        try:
            found = probe.read(Path(root), runner)
            reason = probe.looks_for
        except (OSError, ValueError) as exc:
            found, reason = {}, f"{probe.looks_for} (read failed: {exc})"
        for name in probe.fields:
            value = found.get(name)
            facts.values[name] = value
            if value is None:
                facts.missing[name] = reason
    return facts
