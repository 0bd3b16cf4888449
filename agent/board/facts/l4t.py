"""A Jetson's L4T release, and the JetPack release it belongs to.

Read:
  /etc/nv_tegra_release   "# R35 (release), REVISION: 4.1, GCID: ..." -> L4T "35.4.1"
  dpkg-query -W -f '${Version}' nvidia-jetpack   "5.1.2-b104" -> JetPack "5.1.2"; the
                          metapackage is there when the JetPack SDK was installed (SDK
                          Manager or apt install nvidia-jetpack)
Without the metapackage, JetPack comes from JETPACK_FOR_L4T, NVIDIA's one-to-one release table
(developer.nvidia.com/embedded/jetpack-archive); an L4T release not in it leaves JetPack
missing rather than guessed from a neighbour.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent.board.facts.base import Fact
from agent.probes.commands import Command, CommandRunner
from agent.probes.sysfs import read_text, under

JETPACK_QUERY = Command(
    "dpkg_nvidia_jetpack", ("dpkg-query", "-W", "-f", "${Version}", "nvidia-jetpack")
)
# L4T release -> JetPack release (NVIDIA's JetPack archive).
JETPACK_FOR_L4T = {
    "32.6.1": "4.6", "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3",
    "32.7.4": "4.6.4", "32.7.5": "4.6.5", "32.7.6": "4.6.6",
    "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2",
    "35.5.0": "5.1.3", "35.6.0": "5.1.4", "35.6.1": "5.1.5",
    "36.2.0": "6.0 DP", "36.3.0": "6.0", "36.4.0": "6.1", "36.4.3": "6.2", "36.4.4": "6.2.1",
}  # fmt: skip
_RELEASE = re.compile(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)")
_VERSION = re.compile(r"^(\d+(?:\.\d+)+)")


def tegra_release(root: Path) -> str | None:
    """The L4T release ("35.4.1") from /etc/nv_tegra_release; None on anything else."""
    match = _RELEASE.search(read_text(under(root, "/etc/nv_tegra_release")) or "")
    if match is None:
        return None
    revision = match[2] if match[2].count(".") else match[2] + ".0"
    return f"{match[1]}.{revision}"


class L4tRelease(Fact):
    """L4T and JetPack releases of a Jetson."""

    name = "l4t"
    fields = ("l4t", "jetpack")
    looks_for = "/etc/nv_tegra_release, dpkg-query nvidia-jetpack (Jetson)"

    @classmethod
    def read(cls, root: Path, runner: CommandRunner) -> dict[str, Any]:
        l4t = tegra_release(root)
        if l4t is None:
            return {}
        out = runner.run(JETPACK_QUERY)
        match = _VERSION.match(out.text.strip()) if out.text else None
        jetpack = match[1] if match else JETPACK_FOR_L4T.get(l4t)
        return {"l4t": l4t, "jetpack": jetpack}
