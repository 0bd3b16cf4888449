"""The ordered list of power sources and the one place a board's source is chosen.

Order is preference: board-input meters first (INA3221 on Orin, ina3221x on older
Jetsons, an INA2xx meter), then the Pi 5 PMIC's SoC rails, RAPL, the tegrastats fallback,
and last a discharging battery (whole system, but refreshed only every 1-15 s).
No other module branches on the board.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from agent.probes.base import Source, Unusable
from agent.probes.battery import Battery
from agent.probes.commands import CommandRunner, runner_for
from agent.probes.hwmon import HwmonMeter
from agent.probes.jetson_iio import JetsonIio
from agent.probes.jetson_orin import JetsonOrin
from agent.probes.pi_pmic import PiPmic
from agent.probes.rapl import Rapl
from agent.probes.tegrastats import Tegrastats

REGISTRY: tuple[type[Source], ...] = (
    JetsonOrin,
    JetsonIio,
    HwmonMeter,
    PiPmic,
    Rapl,
    Tegrastats,
    Battery,
)
ROOT_ENV = "FLOPGAP_SYSFS_ROOT"


@dataclass
class Detection:
    """Usable sources in preference order, the ones present but unusable, and what was tried."""

    root: Path
    sources: list[Source] = field(default_factory=list)
    unusable: list[Unusable] = field(default_factory=list)
    looked_for: list[str] = field(default_factory=list)

    @property
    def best(self) -> Source | None:
        """The preferred usable source, or None."""
        return self.sources[0] if self.sources else None

    def unavailable_reason(self) -> str:
        """Why there is no power figure: what was looked for, and what was found unusable."""
        text = f"no usable power source under {self.root}; looked for: " + "; ".join(
            self.looked_for
        )
        if self.unusable:
            text += ". Present but unusable: " + "; ".join(
                f"{u.source}: {u.reason}" for u in self.unusable
            )
        else:
            text += ". None of them is present on this machine"
        return text


def resolve_root(root: Path | str | None = None) -> Path:
    """`root`, else $FLOPGAP_SYSFS_ROOT read now, else "/"."""
    if root is None:
        root = os.environ.get(ROOT_ENV) or "/"
    return Path(root)


def detect(root: Path | str | None = None, runner: CommandRunner | None = None) -> Detection:
    """Every power source under `root`, in registry order, duplicates removed by device key.

    Commands run through `runner`, by default `runner_for(root)`: real commands on "/",
    replayed captures from `<root>/commands/` anywhere else.
    """
    base = resolve_root(root)
    runner = runner if runner is not None else runner_for(base)
    detection = Detection(base)
    seen: set[str] = set()
    for cls in REGISTRY:
        detection.looked_for.append(cls.looks_for)
        try:
            found = cls.detect(base, runner)
        except (OSError, ValueError) as exc:  # a malformed tree must not hide other sources
            detection.unusable.append(Unusable(cls.name, f"detection failed: {exc}"))
            continue
        for source in found.sources:
            if source.key not in seen:
                seen.add(source.key)
                detection.sources.append(source)
        detection.unusable.extend(found.unusable)
    return detection
