"""What one graph or body contributes to a report, and how bodies combine.

Bodies are tallied separately so that an If keeps only its larger branch and a Loop's body
is multiplied by its trip count before joining the enclosing graph.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from collector.flops.report import NodeCost


@dataclass
class Tally:
    """Everything one graph (or body) contributes to the report."""

    nodes: list[NodeCost] = field(default_factory=list)
    uncounted: Counter[str] = field(default_factory=Counter)
    params: dict[str, int] = field(default_factory=dict)
    tensors: dict[str, int] = field(default_factory=dict)
    unknown_bytes: dict[str, None] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)

    def flops_key(self) -> tuple[int, int, int]:
        """Ordering of two If branches: FLOPs, then MACs, then bytes."""
        return (
            sum(n.flops for n in self.nodes),
            sum(n.macs + n.int_macs for n in self.nodes),
            sum(n.bytes_read + n.bytes_written for n in self.nodes),
        )

    def merge(self, other: Tally, repeat: int = 1, why: str = "") -> None:
        """Add a body's tally, its per-node costs multiplied by ``repeat``."""
        for n in other.nodes:
            if repeat != 1:
                n = replace(
                    n,
                    macs=n.macs * repeat,
                    int_macs=n.int_macs * repeat,
                    flops=n.flops * repeat,
                    bytes_read=n.bytes_read * repeat,
                    bytes_written=n.bytes_written * repeat,
                    note="; ".join(x for x in (n.note, f"x{repeat} ({why})") if x),
                )
            self.nodes.append(n)
        self.uncounted.update(other.uncounted)
        self.params.update(other.params)
        self.tensors.update(other.tensors)
        self.unknown_bytes.update(other.unknown_bytes)
        self.assumptions.extend(other.assumptions)
