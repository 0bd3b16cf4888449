"""Jetson `tegrastats` as a fallback power source, and a parser for its lines.

One line per interval (POWER.md, Jetson tegrastats row), e.g.
  Nano (JetPack 4):  RAM 1589/3956MB ... CPU [12%@1479,4%@1479,...] ... GR3D_FREQ 0%@921
                     ... CPU@36.5C ... POM_5V_IN 2000/2000 POM_5V_GPU 0/0 POM_5V_CPU 400/400
  Orin (JetPack 5+): RAM 2754/7620MB ... CPU [2%@729,...,off,off] ... GR3D_FREQ 0%@[305]
                     ... cpu@48.5C ... VDD_IN 5000mW/4900mW VDD_CPU_GPU_CV 600mW/600mW
Rails are "<current>/<average>" in mW (JetPack 4 prints no unit). The current value is used.
Each read starts tegrastats and takes its first line, so this source is slow (about 5 Hz at
most); the sysfs INA3221 sources come first in the registry and are preferred.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from agent.probes.base import POWER_GAUGE, Found, Rail, Reading, Source, Unusable, pick_input_rail
from agent.probes.commands import Command, CommandRunner

TEGRASTATS = Command("tegrastats", ("tegrastats", "--interval", "100"), stream=True)
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_GR3D = re.compile(r"\bGR3D_FREQ (\d+)%")
_TEMP = re.compile(r"\b([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C\b")
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]+) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")


@dataclass
class TegraLine:
    """One parsed tegrastats line. CPU cores that are off are None; power in mW."""

    ram_used_mb: int | None = None
    ram_total_mb: int | None = None
    cpu: list[tuple[int, int | None] | None] = field(default_factory=list)
    gr3d_percent: int | None = None
    temps_c: dict[str, float] = field(default_factory=dict)
    rails_mw: dict[str, tuple[int, int]] = field(default_factory=dict)


def parse_line(line: str) -> TegraLine:
    """Parse one tegrastats line; fields it does not carry stay None or empty."""
    out = TegraLine()
    if ram := _RAM.search(line):
        out.ram_used_mb, out.ram_total_mb = int(ram[1]), int(ram[2])
    if cpu := _CPU.search(line):
        for core in cpu[1].split(","):
            pct, _, mhz = core.strip().partition("%@")
            out.cpu.append(
                (int(pct), int(mhz) if mhz.isdigit() else None) if pct.isdigit() else None
            )
    if gr3d := _GR3D.search(line):
        out.gr3d_percent = int(gr3d[1])
    out.temps_c = {m[1]: float(m[2]) for m in _TEMP.finditer(line)}
    out.rails_mw = {m[1]: (int(m[2]), int(m[3])) for m in _RAIL.finditer(line)}
    return out


class Tegrastats(Source):
    """Rails from tegrastats' current mW values."""

    name = "tegrastats"
    kind = POWER_GAUGE
    looks_for = "Jetson tegrastats power rails (command `tegrastats`)"

    def __init__(self, rails: list[str], runner: CommandRunner) -> None:
        headline = pick_input_rail(rails)
        super().__init__(
            [Rail(r, f"tegrastats {r} <current>mW") for r in rails],
            [headline] if headline else rails,
            headline_rail=headline or "+".join(rails),
            key="tegrastats",
            caveat="fallback: one tegrastats process per reading"
            + ("" if headline else "; no input rail: headline is the sum of monitored rails"),
            update_interval_s=0.1,
            max_rate_hz=5.0,
        )
        self.runner = runner

    @classmethod
    def detect(cls, root: Path, runner: CommandRunner) -> Found:
        out = runner.run(TEGRASTATS)
        if out.missing:
            return Found()
        if out.text is None:
            return Found(unusable=[Unusable(cls.name, f"tegrastats failed: {out.error}")])
        rails = list(parse_line(out.text).rails_mw)
        if not rails:
            return Found(
                unusable=[Unusable(cls.name, "tegrastats prints no power rails on this board")]
            )
        return Found(sources=[cls(rails, runner)])

    def read(self) -> Reading:
        t0 = time.perf_counter_ns()
        out = self.runner.run(TEGRASTATS)
        t_ns = (t0 + time.perf_counter_ns()) // 2
        if out.text is None:
            return Reading(t_ns, {}, {r.name: f"tegrastats: {out.error}" for r in self.rails})
        rails = parse_line(out.text).rails_mw
        values = {r.name: rails[r.name][0] / 1e3 for r in self.rails if r.name in rails}
        gaps = {
            r.name: "tegrastats line lacks this rail" for r in self.rails if r.name not in rails
        }
        return Reading(t_ns, values, gaps)
