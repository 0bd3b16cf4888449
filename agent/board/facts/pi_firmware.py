"""A Raspberry Pi's VideoCore firmware version.

Read, in order:
  `vcgencmd version`   three lines: the build date ("2024/09/23 14:02:56"), a copyright line,
                       "version 26826259 (release) (release) (start)" -> the firmware hash
  /proc/device-tree/chosen/bootloader/version   the EEPROM bootloader's hash (Pi 4, Pi 5),
                       when vcgencmd is absent or refused (it needs group `video`); on a Pi 5
                       the firmware lives in that EEPROM, on a Pi 4 it is only the bootloader
`pi_firmware`: "26826259 (2024/09/23 14:02:56)", or "bootloader <hash>" from the device tree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent.board.facts.base import Fact
from agent.probes.commands import Command, CommandRunner
from agent.probes.sysfs import read_text, under

VCGENCMD_VERSION = Command("vcgencmd_version", ("vcgencmd", "version"))
_HASH = re.compile(r"^version\s+(\S+)", re.MULTILINE)
_DATE = re.compile(r"^\s*(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d|\w{3} +\d+ \d{4} \d\d:\d\d:\d\d)", re.M)


def parse_version(text: str) -> str | None:
    """`vcgencmd version` output -> "<hash> (<build date>)"; None without a version line."""
    found = _HASH.search(text)
    if found is None:
        return None
    date = _DATE.search(text)
    return f"{found[1]} ({date[1]})" if date else found[1]


class PiFirmware(Fact):
    """Raspberry Pi firmware version."""

    name = "pi_firmware"
    fields = ("pi_firmware",)
    looks_for = "vcgencmd version, /proc/device-tree/chosen/bootloader/version (Raspberry Pi)"

    @classmethod
    def read(cls, root: Path, runner: CommandRunner) -> dict[str, Any]:
        out = runner.run(VCGENCMD_VERSION)
        version = parse_version(out.text) if out.text else None
        if version is None:
            loader = read_text(under(root, "/proc/device-tree/chosen/bootloader/version"))
            version = f"bootloader {loader}" if loader else None
        return {"pi_firmware": version}
