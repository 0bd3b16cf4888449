"""``[targets]``: which registered agents a campaign runs on.

Why both names and tags: a name glob (``pi5-*``) is quick for a lab whose boards are named
well; tags (``board = "pi5"``, ``site = "lab-2"``) survive renames and pick boards by what they
are. A campaign that selects nothing is refused, because an empty selector is always a mistake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from collector.campaign.tables import Table
from shared.errors import UsageError

TARGET_KEYS = ("agents", "tags")
_HINT = 'add [targets] with agents = ["*"] for every agent, or tags = { board = "pi5" }'


@dataclass(frozen=True)
class Targets:
    """Any of ``agents`` (names or fnmatch globs, case-sensitive) and all of ``tags``.

    With both given an agent must satisfy both; at least one must be given.
    """

    agents: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.agents and not self.tags:
            raise UsageError("a campaign's targets select no agent", _HINT)

    def matches(self, agent_name: str, tags: Mapping[str, str]) -> bool:
        """True when the name matches one pattern (if any are given) and every tag is equal."""
        if self.agents and not any(fnmatchcase(agent_name, p) for p in self.agents):
            return False
        return all(tags.get(key) == value for key, value in self.tags.items())


def read_targets(top: Table) -> Targets:
    """The ``[targets]`` table; ``agents = []`` is allowed only beside tags."""
    if "targets" not in top.raw:
        raise top.error("targets", "missing: a campaign must say which agents it runs on", _HINT)
    table = top.table("targets", TARGET_KEYS)
    tags_table = table.table("tags", None)
    tags = {key: tags_table.get(key, "a string") for key in tags_table.raw}
    written = table.raw.get("agents")
    if written is None or written == []:
        if not tags:
            raise table.error("", "selects no agent (no agents and no tags)", _HINT)
        return Targets(tags=tags)
    return Targets(agents=tuple(table.items("agents", "a string") or ()), tags=tags)
