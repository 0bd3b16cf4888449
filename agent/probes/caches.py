"""CPU cache sizes from sysfs, so the roofline can draw a roof per cache level.

Nodes read (per cache of cpu0, one folder each), under the injected root:
  /sys/devices/system/cpu/cpu0/cache/index<N>/level            1, 2, 3 (integer)
  /sys/devices/system/cpu/cpu0/cache/index<N>/type             Data, Instruction or Unified
  /sys/devices/system/cpu/cpu0/cache/index<N>/size             e.g. "32K", "1024K", "2M" (KiB/MiB)
  /sys/devices/system/cpu/cpu0/cache/index<N>/shared_cpu_list  e.g. "0-3" (optional)

An instruction cache holds no tensors, so it never makes a roof. A tree without the folder
(many ARM kernels before 5.x, containers that hide /sys) gives no caches and the stated
fallback UNKNOWN: the roofline keeps its DRAM roof only; no size is ever guessed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent.probes.registry import resolve_root
from agent.probes.sysfs import read_int, read_text, under

CACHE_DIR = "/sys/devices/system/cpu/cpu0/cache"
UNKNOWN = "cache sizes unknown: DRAM roof only"
_SIZE = re.compile(r"(\d+)\s*([KMG]?)", re.IGNORECASE)
_SCALE = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def size_bytes(text: str | None) -> int | None:
    """sysfs size text ("32K", "2M", "512") in bytes; None when absent or unreadable."""
    match = _SIZE.fullmatch(text.strip()) if text else None
    if match is None:
        return None
    return int(match.group(1)) * _SCALE[match.group(2).upper()]


def cpu_count(cpu_list: str | None) -> int | None:
    """How many CPUs a list such as "0-3,6" names; None when absent or malformed."""
    if not cpu_list:
        return None
    total = 0
    for part in cpu_list.split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            return None
        total += int(high) - int(low) + 1 if high else 1
    return total


def read_caches(root: Path | str | None = None) -> list[dict[str, Any]]:
    """Every cache of cpu0 with a level and a size, ordered by level then type:
    [{"level": 2, "type": "Unified", "size_bytes": 1048576, "shared_cpus": 1}, ...]
    (shared_cpus None when the node is missing). Empty when the folder is absent."""
    base = under(resolve_root(root), CACHE_DIR)
    caches: list[dict[str, Any]] = []
    for folder in sorted(base.glob("index*")) if base.is_dir() else []:
        level, size = read_int(folder / "level"), size_bytes(read_text(folder / "size"))
        if level is None or size is None or size <= 0:
            continue
        caches.append(
            {
                "level": level,
                "type": read_text(folder / "type") or "Unknown",
                "size_bytes": size,
                "shared_cpus": cpu_count(read_text(folder / "shared_cpu_list")),
            }
        )
    return sorted(caches, key=lambda c: (c["level"], c["type"]))


def data_levels(caches: list[dict[str, Any]]) -> dict[int, int]:
    """Level -> size in bytes of the caches that hold data (Data or Unified), e.g.
    {1: 32768, 2: 1048576, 3: 33554432}; {} when none is known."""
    return {
        int(c["level"]): int(c["size_bytes"])
        for c in caches
        if str(c["type"]).lower() in ("data", "unified")
    }


def descriptor_fields(root: Path | str | None = None) -> dict[str, int | None]:
    """l1_bytes, l2_bytes, l3_bytes for the device descriptor (None where unknown): flat
    scalars, because the wire's descriptor schema carries scalars only (shared.protocol)."""
    levels = data_levels(read_caches(root))
    return {f"l{n}_bytes": levels.get(n) for n in (1, 2, 3)}
