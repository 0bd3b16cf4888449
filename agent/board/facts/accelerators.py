"""GPU and DLA presence: what a board could offload to, whether or not ORT uses it.

Read:
  /sys/class/devfreq/<addr>.<name>/max_freq   a Tegra integrated GPU's DVFS node; <name> is
                  its core (ga10b Orin, gv11b Xavier, gp10b TX2, gm20b Nano) or "gpu" (L4T 36)
  /proc/device-tree/nvdla*@*/status, /proc/device-tree/*/nvdla*@*/status
                  one node per DLA core (Orin NX/AGX, Xavier); "okay" (or no status node,
                  which the device-tree spec reads as enabled) counts it
  /sys/class/drm/card<N>/device/uevent        DRIVER= of any other GPU (i915, amdgpu, v3d)
`gpu` is the GPU's core or driver name(s), `dla` the number of enabled DLA cores; each is
missing where nothing is found (an Orin Nano has no DLA).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent.board.facts.base import Fact
from agent.probes.commands import CommandRunner
from agent.probes.nodes import list_dir
from agent.probes.sysfs import read_text, under

TEGRA_GPUS = frozenset({"ga10b", "gv11b", "gp10b", "gm20b", "gpu"})
_DRIVER = re.compile(r"^DRIVER=(\S+)", re.MULTILINE)
_CARD = re.compile(r"card\d+$")


def gpu_devfreq(root: Path) -> list[Path]:
    """The devfreq folders of a Tegra integrated GPU (e.g. .../17000000.ga10b)."""
    found = list_dir(under(root, "/sys/class/devfreq"))
    return [p for p in found if p.name.rpartition(".")[2] in TEGRA_GPUS]


def _tegra_gpu(root: Path) -> str | None:
    for folder in gpu_devfreq(root):
        if read_text(folder / "max_freq") is not None:
            name = folder.name.rpartition(".")[2]
            compatible = read_text(folder / "device" / "of_node" / "compatible")
            first = (compatible or "").split("\x00")[0]
            return first.partition(",")[2] or first or name
    return None


def _drm_drivers(root: Path) -> str | None:
    drivers: set[str] = set()
    for card in list_dir(under(root, "/sys/class/drm"), "card*"):
        if _CARD.match(card.name):
            match = _DRIVER.search(read_text(card / "device" / "uevent") or "")
            if match:
                drivers.add(match[1])
    return ",".join(sorted(drivers)) or None


def dla_cores(root: Path) -> int | None:
    """Enabled DLA cores in the device tree; None when the tree names none."""
    base = under(root, "/proc/device-tree")
    nodes = list_dir(base, "nvdla*@*") + list_dir(base, "*/nvdla*@*")
    enabled = 0
    for node in nodes:
        status = read_text(node / "status")
        compatible = read_text(node / "compatible")
        if status in (None, "okay", "ok") and (status is not None or compatible is not None):
            enabled += 1
    return enabled or None


class Accelerators(Fact):
    """GPU and DLA presence."""

    name = "accelerators"
    fields = ("gpu", "dla")
    looks_for = (
        "/sys/class/devfreq/*.<tegra gpu>, /proc/device-tree/**/nvdla*@*/status, "
        "/sys/class/drm/card*/device/uevent"
    )

    @classmethod
    def read(cls, root: Path, runner: CommandRunner) -> dict[str, Any]:
        return {"gpu": _tegra_gpu(root) or _drm_drivers(root), "dla": dla_cores(root)}
