"""cpufreq policies: one folder per group of CPUs that share a clock.

  /sys/devices/system/cpu/cpufreq/policy<N>/related_cpus      "0 1 2 3" (CPUs of the policy)
  /sys/devices/system/cpu/cpufreq/policy<N>/scaling_governor  e.g. schedutil, performance
  /sys/devices/system/cpu/cpufreq/policy<N>/scaling_min_freq, scaling_max_freq   kHz
A VM or a container without cpufreq has no policy folder.
"""

from __future__ import annotations

from pathlib import Path

from agent.probes.nodes import list_dir
from agent.probes.sysfs import read_text, under

POLICY_DIR = "/sys/devices/system/cpu/cpufreq"


def policy_dirs(root: Path) -> list[Path]:
    """Every policy<N> folder, in natural order (policy4 before policy10)."""
    return [p for p in list_dir(under(root, POLICY_DIR), "policy*") if p.name[6:].isdigit()]


def related_cpus(policy: Path) -> list[int]:
    """The CPUs a policy governs; [N] of policy<N> when related_cpus is unreadable."""
    text = read_text(policy / "related_cpus") or ""
    cpus = [int(t) for t in text.split() if t.isdigit()]
    return cpus or [int(policy.name[6:])]


def cpu_ranges(cpus: list[int]) -> str:
    """[0, 1, 2, 3, 6] -> "0-3,6", the kernel's own cpulist spelling."""
    runs: list[list[int]] = []
    for cpu in sorted(set(cpus)):
        if runs and cpu == runs[-1][1] + 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(f"{lo}-{hi}" if hi != lo else f"{lo}" for lo, hi in runs)
