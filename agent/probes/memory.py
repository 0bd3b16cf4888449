"""This process's memory: current RSS (psutil) and the kernel's high-water mark (VmHWM)."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import psutil

_MB = 1024.0 * 1024.0
_PROC_SELF = Path("/proc/self")


def rss_mb(process: psutil.Process) -> float:
    """Resident set size now, in MiB."""
    return float(process.memory_info().rss) / _MB


def reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); True when it worked.

    Without a reset, VmHWM would include peaks from before the measurement (imports, a
    previous job), so the method string records whether the reset happened.
    """
    try:
        (_PROC_SELF / "clear_refs").write_text("5")
        return True
    except OSError:
        return False


def hwm_mb() -> tuple[float | None, str]:
    """Peak RSS the OS recorded, in MiB, with where it came from."""
    try:
        for line in (_PROC_SELF / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0, "VmHWM from /proc/self/status"
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = _MB if sys.platform == "darwin" else 1024.0
    return float(peak) / scale, "ru_maxrss from getrusage"
