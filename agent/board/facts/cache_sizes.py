"""The CPU's data cache sizes, as descriptor fields (read by agent.probes.caches).

Fields l1_bytes, l2_bytes, l3_bytes: the roofline draws a roof per cache level from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.board.facts.base import Fact
from agent.probes.caches import CACHE_DIR, descriptor_fields
from agent.probes.commands import CommandRunner


class CacheSizes(Fact):
    """cpu0's data and unified caches."""

    name = "caches"
    fields = ("l1_bytes", "l2_bytes", "l3_bytes")
    looks_for = f"{CACHE_DIR}/index*/{{level,type,size}}"

    @classmethod
    def read(cls, root: Path, runner: CommandRunner) -> dict[str, Any]:
        return dict(descriptor_fields(root))
