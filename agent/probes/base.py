"""The interface every power or energy source implements, and its failure-aware file reads.

A source says what it measures (`kind`: an energy counter in J, or a power gauge in W), on
which rails, which rails make its headline figure, how often its sensor updates, and any
caveat. `read()` returns one Reading: a perf_counter_ns timestamp and, per rail, either a
value (SI units: J for counters, W for gauges) or a gap with its reason. A failed read is
never 0 (STYLE.md, "Missing is None"). Sources read files through agent.probes.nodes.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from agent.probes.commands import CommandRunner

Kind = Literal["energy_counter", "power_gauge"]
ENERGY_COUNTER: Kind = "energy_counter"
POWER_GAUGE: Kind = "power_gauge"


@dataclass(frozen=True)
class Rail:
    """One rail or domain: its name, the node it is read from (with unit), and for an energy
    counter the range it wraps at, in J."""

    name: str
    node: str
    wrap_j: float | None = None


@dataclass(frozen=True)
class Reading:
    """One read of every rail: values in J (counters) or W (gauges), gaps as reasons."""

    t_ns: int
    values: dict[str, float]
    gaps: dict[str, str]


@dataclass(frozen=True)
class Unusable:
    """A source that is present but cannot be used, and why (with what to do about it)."""

    source: str
    reason: str


@dataclass
class Found:
    """What one source class found under a root."""

    sources: list[Source] = field(default_factory=list)
    unusable: list[Unusable] = field(default_factory=list)


class Source(ABC):
    """One power or energy source on this board."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    looks_for: ClassVar[str]

    def __init__(
        self,
        rails: Sequence[Rail],
        headline: Sequence[str],
        headline_rail: str,
        key: str,
        caveat: str | None = None,
        update_interval_s: float | None = None,
        max_rate_hz: float | None = None,
    ) -> None:
        self.rails = tuple(rails)
        self.headline = tuple(headline)
        self.headline_rail = headline_rail
        self.key = key
        self.caveat = caveat
        self.update_interval_s = update_interval_s
        self.max_rate_hz = max_rate_hz

    @property
    def unit(self) -> str:
        """Unit of Reading values: cumulative J for counters, instantaneous W for gauges."""
        return "J" if self.kind == ENERGY_COUNTER else "W"

    @classmethod
    @abstractmethod
    def detect(cls, root: Path, runner: CommandRunner) -> Found:
        """Every instance of this source under `root`, and those present but unusable."""

    @abstractmethod
    def read(self) -> Reading:
        """One reading of every rail; never raises for a sensor failure."""

    def status(self) -> dict[str, Any] | None:
        """Throttle/temperature state where the source offers it (Pi), else None."""
        return None

    def __repr__(self) -> str:
        return f"<{self.name} {self.key} rails={[r.name for r in self.rails]}>"


def make_reading(t0_ns: int, results: dict[str, tuple[float | None, str | None]]) -> Reading:
    """A Reading stamped at the middle of the read that began at t0_ns."""
    t_ns = (t0_ns + time.perf_counter_ns()) // 2
    values = {rail: v for rail, (v, _) in results.items() if v is not None}
    gaps = {rail: why or "no value" for rail, (v, why) in results.items() if v is None}
    return Reading(t_ns, values, gaps)


INPUT_RAILS = ("VDD_IN", "POM_5V_IN")


def pick_input_rail(names: Sequence[str]) -> str | None:
    """The board-input rail among Jetson rail names (POWER.md, Jetson rows), or None.

    VDD_IN (Orin, Xavier, TX2) or POM_5V_IN (Nano) feeds every other rail, so it is the
    headline alone, never summed with them. AGX Orin has none but VIN_SYS_5V0.
    """
    for wanted in INPUT_RAILS:
        if wanted in names:
            return wanted
    for name in names:
        if name.startswith("VIN") or name.endswith("_IN"):
            return name
    return None
