"""The interface every descriptor probe implements.

A probe names the descriptor fields it fills and says what it looks for (files and commands),
so a field it cannot fill is reported missing with that text, never given a made-up value.
`read` returns only the fields it found: a field left out is missing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from agent.probes.commands import CommandRunner


class Fact(ABC):
    """One source of descriptor fields (STYLE.md: choose a hardware variant once)."""

    name: ClassVar[str]
    fields: ClassVar[tuple[str, ...]]
    looks_for: ClassVar[str]

    @classmethod
    @abstractmethod
    def read(cls, root: Path, runner: CommandRunner) -> dict[str, Any]:
        """The fields found under `root` (a subset of `fields`); never raises for an absent
        or unreadable node, which is simply left out."""
