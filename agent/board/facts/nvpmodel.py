"""A Jetson's nvpmodel power mode: its id and name.

Read, in order (the first that answers wins):
  `nvpmodel -q`               "NV Power Mode: MAXN" then the id on a line of its own ("0"),
                              after optional "NV Fan Mode:..." and "NVPM WARN" lines
  /var/lib/nvpmodel/status    "pmode:0002 fmode:quiet": the mode nvpmodel last set, which it
                              re-applies at boot; the name then comes from the conf below
  /etc/nvpmodel.conf          "< POWER_MODEL ID=2 NAME=15W >" blocks: id -> name
Without the status file and the command, the mode is missing: the conf's PM_CONFIG DEFAULT is
what a fresh board boots in, not necessarily what this one runs, so it is never assumed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent.board.facts.base import Fact
from agent.probes.commands import Command, CommandRunner
from agent.probes.sysfs import read_text, under

NVPMODEL_QUERY = Command("nvpmodel_query", ("nvpmodel", "-q"))
_MODEL = re.compile(r"^<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)\s*>", re.MULTILINE)
_STATUS = re.compile(r"pmode:\s*(\d+)")
_QUERY_NAME = re.compile(r"^NV Power Mode:\s*(\S+)\s*$", re.MULTILINE)


def mode_names(conf: str | None) -> dict[int, str]:
    """id -> name of every POWER_MODEL block in an nvpmodel.conf."""
    return {int(i): name for i, name in _MODEL.findall(conf or "")}


def parse_query(text: str) -> tuple[int | None, str | None]:
    """(id, name) from `nvpmodel -q` output; either may be None."""
    match = _QUERY_NAME.search(text)
    if match is None:
        return None, None
    after = text[match.end() :].split()
    mode_id = int(after[0]) if after and after[0].isdigit() else None
    return mode_id, match[1]


class NvpModel(Fact):
    """The active nvpmodel mode of a Jetson."""

    name = "nvpmodel"
    fields = ("power_mode", "power_mode_id")
    looks_for = "nvpmodel -q, /var/lib/nvpmodel/status + /etc/nvpmodel.conf (Jetson)"

    @classmethod
    def read(cls, root: Path, runner: CommandRunner) -> dict[str, Any]:
        conf = read_text(under(root, "/etc/nvpmodel.conf"))
        names = mode_names(conf)
        out = runner.run(NVPMODEL_QUERY)
        mode_id, mode_name = parse_query(out.text) if out.text else (None, None)
        if mode_id is None:
            status = _STATUS.search(read_text(under(root, "/var/lib/nvpmodel/status")) or "")
            mode_id = int(status[1]) if status else None
        if mode_name is None and mode_id is not None:
            mode_name = names.get(mode_id)
        return {"power_mode": mode_name, "power_mode_id": mode_id}
