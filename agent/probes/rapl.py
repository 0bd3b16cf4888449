"""RAPL energy counters (Intel; AMD since Linux 5.8), from the powercap sysfs class.

Nodes, per domain folder /sys/class/powercap/intel-rapl:N/, intel-rapl:N:M/ (subdomain of
N) and intel-rapl-mmio:N/ (POWER.md, x86 RAPL row):
  name                 domain: package-N, core, uncore, dram, psys
  energy_uj            cumulative energy, µJ; wraps at max_energy_range_uj
  max_energy_range_uj  the counter's range, µJ
The counters update about every 1 ms and there is no instantaneous power file.

Quirks:
  - energy_uj is root-only on current distributions since CVE-2020-8694 (POWER.md, RAPL
    row): the domain is reported unusable, with the command that grants read access.
  - domains overlap, psys ⊃ package ⊃ core/uncore (POWER.md, "Traps"): each domain is its
    own rail and the headline is ONE choice: psys when present, else the sum of the
    package-N domains, which do not overlap each other.
  - intel-rapl-mmio:N reads the same package through MMIO: a rail, never in the headline.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from agent.probes.base import ENERGY_COUNTER, Found, Rail, Reading, Source, Unusable, make_reading
from agent.probes.commands import CommandRunner
from agent.probes.nodes import PERMISSION_DENIED, list_dir, read_number, read_str
from agent.probes.sysfs import under

POWERCAP = "/sys/class/powercap"
_DOMAIN = re.compile(r"intel-rapl(?P<mmio>-mmio)?:(?P<top>\d+)(?::(?P<sub>\d+))?$")
_UJ = 1e-6  # J per µJ


def grant_command(mmio: bool) -> str:
    """The exact commands that let a non-root user read the RAPL counters."""
    globs = "/sys/class/powercap/intel-rapl:*/energy_uj"
    if mmio:
        globs += " /sys/class/powercap/intel-rapl-mmio:*/energy_uj"
    return (
        f"sudo chmod o+r {globs} (until reboot; to keep it, a udev rule in "
        "/etc/udev/rules.d/70-flopgap-rapl.rules: "
        'ACTION=="add", SUBSYSTEM=="powercap", RUN+="/bin/chmod o+r /sys%p/energy_uj"; '
        "or a group with mode 0440 instead of o+r on shared machines, since the counters "
        "are a side channel)"
    )


class Rapl(Source):
    """All readable RAPL domains of this machine, as one energy-counter source."""

    name = "rapl"
    kind = ENERGY_COUNTER
    looks_for = "RAPL energy counters (/sys/class/powercap/intel-rapl*:*/energy_uj)"

    def __init__(self, rails: list[Rail], files: dict[str, Path], headline: list[str]) -> None:
        psys = headline == ["psys"]
        super().__init__(
            rails,
            headline,
            headline_rail="+".join(headline),
            key=f"rapl:{min(files.values()).parent}",
            caveat=(
                "RAPL domains overlap (psys ⊃ package ⊃ core/uncore) and are never summed; "
                + (
                    "headline is psys, the platform domain"
                    if psys
                    else "headline is the sum of the package-N domains (CPU packages only, "
                    "not the rest of the board)"
                )
            ),
            update_interval_s=0.001,
        )
        self.files = files

    @classmethod
    def detect(cls, root: Path, runner: CommandRunner) -> Found:
        rails: list[Rail] = []
        files: dict[str, Path] = {}
        denied: list[str] = []
        broken: list[str] = []
        domains = [
            d for d in list_dir(under(root, POWERCAP), "intel-rapl*:*") if _DOMAIN.match(d.name)
        ]
        names = {d.name: read_str(d / "name")[0] or d.name for d in domains}
        for domain in domains:
            rail = _rail_name(domain.name, names)
            energy, why = read_number(domain / "energy_uj")
            wrap, why_wrap = read_number(domain / "max_energy_range_uj")
            if energy is None:
                (denied if why and why.endswith(PERMISSION_DENIED) else broken).append(
                    f"{rail}: {why}"
                )
            elif wrap is None or wrap <= 0:
                broken.append(f"{rail}: cannot correct wrap-around ({why_wrap})")
            else:
                rails.append(Rail(rail, f"{domain}/energy_uj (µJ)", wrap * _UJ))
                files[rail] = domain / "energy_uj"
        found = Found()
        if denied:
            mmio = any("mmio" in d.name for d in domains)
            found.unusable.append(
                Unusable(
                    "rapl",
                    f"RAPL energy_uj is readable by root only (CVE-2020-8694): "
                    f"{'; '.join(denied)}. Grant read access: {grant_command(mmio)}",
                )
            )
        if broken:
            found.unusable.append(Unusable("rapl", "RAPL domain unreadable: " + "; ".join(broken)))
        headline = _headline([r.name for r in rails])
        if headline:
            found.sources.append(cls(rails, files, headline))
        return found

    def read(self) -> Reading:
        t0 = time.perf_counter_ns()
        results: dict[str, tuple[float | None, str | None]] = {}
        for rail, path in self.files.items():
            value, why = read_number(path)
            results[rail] = (value * _UJ if value is not None else None, why)
        return make_reading(t0, results)


def _rail_name(folder: str, names: dict[str, str]) -> str:
    """package-0, psys; package-0/core for subdomain :0:0; mmio/package-0 for MMIO."""
    match = _DOMAIN.match(folder)
    assert match is not None
    own = names[folder]
    if match["mmio"]:
        return f"mmio/{own}"
    if match["sub"] is not None:
        parent = names.get(f"intel-rapl:{match['top']}", f"intel-rapl:{match['top']}")
        return f"{parent}/{own}"
    return own


def _headline(rails: list[str]) -> list[str]:
    """psys alone if present, else every top-level package-N domain (they do not overlap)."""
    if "psys" in rails:
        return ["psys"]
    return [r for r in rails if re.fullmatch(r"package-\d+", r)]
