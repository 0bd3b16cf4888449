"""What powers the machine: mains, USB, a battery and its state.

Read, per /sys/class/power_supply/<name>/ (psutil's sensors_battery reads the same nodes):
  type       Mains, USB, Battery, UPS (Wireless and others are skipped)
  scope      "Device" for a peripheral's battery (a mouse): skipped
  online     1/0 for Mains and USB
  status     Charging, Discharging, Full, Not charging (batteries)
  capacity   percent (batteries)
`power_supply`: each supply as "<kind> <state>", ", "-separated in folder order, e.g.
"ac online, battery discharging 74%". A laptop on battery runs its CPU under a lower power
limit, so two results from one laptop need this to be compared. Missing where the class is
empty (desktops, VMs, most boards powered through a barrel or USB-C without a gauge).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.board.facts.base import Fact
from agent.probes.commands import CommandRunner
from agent.probes.nodes import list_dir
from agent.probes.sysfs import read_int, read_text, under

KINDS = {"mains": "ac", "usb": "usb", "ups": "ups", "battery": "battery"}


def _describe(supply: Path) -> str | None:
    kind = KINDS.get((read_text(supply / "type") or "").lower())
    if kind is None or (read_text(supply / "scope") or "").lower() == "device":
        return None
    if kind != "battery":
        online = read_int(supply / "online")
        return f"{kind} {'online' if online else 'offline'}" if online is not None else kind
    status = (read_text(supply / "status") or "").lower()
    capacity = read_int(supply / "capacity")
    parts = [kind, status, f"{capacity}%" if capacity is not None else ""]
    return " ".join(p for p in parts if p)


class PowerSupply(Fact):
    """AC / battery state."""

    name = "power_supply"
    fields = ("power_supply",)
    looks_for = "/sys/class/power_supply/*/{type,scope,online,status,capacity}"

    @classmethod
    def read(cls, root: Path, runner: CommandRunner) -> dict[str, Any]:
        found = [_describe(s) for s in list_dir(under(root, "/sys/class/power_supply"))]
        supplies = [s for s in found if s]
        return {"power_supply": ", ".join(supplies)} if supplies else {}
