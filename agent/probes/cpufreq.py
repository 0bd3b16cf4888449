"""CPU frequency, governor and thermal-throttle counters from cpufreq sysfs.

Nodes (per logical CPU N under /sys/devices/system/cpu/cpuN/):
  cpufreq/scaling_cur_freq   kHz, instantaneous
  cpufreq/scaling_governor   governor name (performance, ondemand, schedutil, ...)
  thermal_throttle/core_throttle_count, package_throttle_count   cumulative events (x86)
Virtual machines often expose none of these: every reader then returns None.
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.probes.sysfs import read_int, read_text, under

_CPU_DIR = re.compile(r"cpu(\d+)$")


def cpu_dirs(root: Path | str) -> dict[int, Path]:
    """Logical CPU index -> its sysfs folder."""
    base = under(root, "/sys/devices/system/cpu")
    try:
        entries = list(base.iterdir())
    except OSError:
        return {}
    found = {}
    for entry in entries:
        match = _CPU_DIR.match(entry.name)
        if match:
            found[int(match.group(1))] = entry
    return dict(sorted(found.items()))


def frequencies_mhz(dirs: dict[int, Path]) -> dict[int, float] | None:
    """Current frequency of each CPU in MHz, or None when cpufreq is not exposed."""
    freqs = {}
    for cpu, path in dirs.items():
        khz = read_int(path / "cpufreq" / "scaling_cur_freq")
        if khz is not None:
            freqs[cpu] = khz / 1000.0
    return freqs or None


def governors(dirs: dict[int, Path]) -> list[str] | None:
    """Distinct scaling governors in use, or None when cpufreq is not exposed."""
    found = {read_text(path / "cpufreq" / "scaling_governor") for path in dirs.values()}
    found.discard(None)
    found.discard("")
    return sorted(g for g in found if g) or None


def throttle_count(dirs: dict[int, Path]) -> int | None:
    """Sum of thermal-throttle events over all CPUs, or None when not exposed."""
    total = None
    for path in dirs.values():
        for name in ("core_throttle_count", "package_throttle_count"):
            value = read_int(path / "thermal_throttle" / name)
            if value is not None:
                total = (total or 0) + value
    return total
