"""CPU accounting over a window: who else used the CPU while we measured.

System-wide busy time minus this process's own CPU time, divided by the window's wall time,
is the number of cores other processes kept busy. It is read from /proc/stat and
/proc/self/stat through psutil at the window's start and end only.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class CpuSnapshot:
    """Counters at one instant (seconds of CPU time, monotonic seconds)."""

    wall_s: float
    busy_s: float
    steal_s: float
    total_s: float
    own_s: float
    loadavg: list[float] | None


def snapshot(process: psutil.Process) -> CpuSnapshot:
    """Read every counter once."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    total = sum(times)
    steal = getattr(times, "steal", 0.0)
    # guest time is already included in user time on Linux; do not count it twice.
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    own = process.cpu_times()
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return CpuSnapshot(
        wall_s=time.monotonic(),
        busy_s=total - idle - steal,
        steal_s=steal,
        total_s=total,
        own_s=own.user + own.system,
        loadavg=load,
    )


@dataclass(frozen=True)
class CpuWindow:
    """CPU use over a window."""

    foreign_cores: float | None
    own_cores: float | None
    util_percent: float | None
    steal_fraction: float | None


def between(start: CpuSnapshot, end: CpuSnapshot) -> CpuWindow:
    """CPU use between two snapshots; None fields when the window is too short to say."""
    wall = end.wall_s - start.wall_s
    total = end.total_s - start.total_s
    if wall <= 0.05 or total <= 0:
        return CpuWindow(None, None, None, None)
    busy = end.busy_s - start.busy_s
    own = end.own_s - start.own_s
    return CpuWindow(
        foreign_cores=max(0.0, (busy - own) / wall),
        own_cores=own / wall,
        util_percent=100.0 * busy / total,
        steal_fraction=(end.steal_s - start.steal_s) / total,
    )
