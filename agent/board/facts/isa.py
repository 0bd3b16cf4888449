"""The CPU's instruction-set extensions that ONNX Runtime's kernels pick between.

Read: /proc/cpuinfo, the `flags` line (x86) or the `Features` line (Arm); the first CPU's.
Only the extensions MLAS and ORT dispatch on are kept, in this fixed order:
  x86: avx, avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512_vnni, avx_vnni,
       avx512_bf16, avx512_fp16, amx_tile, amx_bf16, amx_int8
  Arm: neon (32-bit kernels), asimd (64-bit NEON), asimdhp, fphp (fp16 arithmetic), asimddp
       (dotprod: int8 kernels), i8mm (int8 matmul), bf16, sve, sve2
`isa` is that list: empty when the line is there and names none of them (an x86-64 before
AVX), missing when /proc/cpuinfo has no such line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.board.facts.base import Fact
from agent.probes.commands import CommandRunner
from agent.probes.sysfs import read_text, under

X86 = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
       "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")  # fmt: skip
ARM = ("neon", "asimd", "asimdhp", "fphp", "asimddp", "i8mm", "bf16", "sve", "sve2")


def cpu_flags(cpuinfo: str) -> set[str] | None:
    """The first `flags` or `Features` line's words; None when there is neither."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return set(value.split())
    return None


class IsaFlags(Fact):
    """ISA extensions ORT uses."""

    name = "isa"
    fields = ("isa",)
    looks_for = "/proc/cpuinfo flags (x86) or Features (Arm)"

    @classmethod
    def read(cls, root: Path, runner: CommandRunner) -> dict[str, Any]:
        flags = cpu_flags(read_text(under(root, "/proc/cpuinfo")) or "")
        if flags is None:
            return {}
        return {"isa": [name for name in (*X86, *ARM) if name in flags]}
