"""Temperatures from /sys/class/thermal/thermal_zone*/{type, temp} (temp in m°C)."""

from __future__ import annotations

from pathlib import Path

from agent.probes.sysfs import read_int, read_text, under


def temperatures_c(root: Path | str) -> dict[str, float] | None:
    """Zone name -> °C, or None when the board exposes no thermal zones."""
    base = under(root, "/sys/class/thermal")
    try:
        zones = sorted(p for p in base.iterdir() if p.name.startswith("thermal_zone"))
    except OSError:
        return None
    temps = {}
    for zone in zones:
        milli = read_int(zone / "temp")
        if milli is None:
            continue
        kind = read_text(zone / "type") or zone.name
        key = kind if kind not in temps else f"{kind}/{zone.name}"
        temps[key] = milli / 1000.0
    return temps or None
