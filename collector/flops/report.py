"""The result of counting a model, and its JSON form.

Every document names its convention, because tools disagree by 2x on what a "FLOP" is: here
``macs`` are multiply-accumulates, ``flops`` count 2 per MAC plus per-element work, and
``flops_2mac`` is 2 x MACs alone (what Ultralytics calls FLOPs).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

CONVENTION = (
    "flopgap-flops/1: macs = multiply-accumulates of Conv, ConvTranspose, Gemm, MatMul, Einsum "
    "and attention ops; flops = 2*macs + per-element counts of all other ops (docs/FLOPS.md); "
    "flops_2mac = 2*macs; int_macs = MACs of quantized ops, not in flops; "
    "bytes = sum over nodes of input + output tensor bytes; intensity = flops / bytes"
)


def ratio(flops: int, nbytes: int) -> float | None:
    """Arithmetic intensity in FLOP/byte, or None when no bytes move."""
    return flops / nbytes if nbytes else None


@dataclass(slots=True)
class NodeCost:
    """Cost of one node (a body node of a Loop is already multiplied by its trip count).

    Same units as ``Totals``; ``params`` are the parameter elements this node reads (a weight
    shared by two nodes shows on both, but counts once in the total).
    """

    name: str
    op_type: str
    macs: int
    int_macs: int
    flops: int
    params: int
    bytes_read: int
    bytes_written: int
    intensity: float | None
    note: str = ""


@dataclass(frozen=True)
class Totals:
    """Whole-model sums; ``bytes`` sums nodes, ``unique_bytes`` counts each tensor once.

    Units: multiply-accumulates, floating-point operations, parameter elements, bytes, and
    FLOP/byte for ``intensity`` (None when no bytes move).
    """

    macs: int
    int_macs: int
    flops: int
    flops_2mac: int
    params: int
    bytes: int
    unique_bytes: int
    intensity: float | None


@dataclass
class OpTypeCost:
    """Sums over the nodes of one op type."""

    count: int = 0
    macs: int = 0
    int_macs: int = 0
    flops: int = 0
    bytes: int = 0


@dataclass
class CostReport:
    """Theoretical cost of a model at given input shapes, with every assumption stated."""

    convention: str
    model: str
    inputs: dict[str, list[int | str]]
    total: Totals
    by_op_type: dict[str, OpTypeCost]
    nodes: list[NodeCost] = field(default_factory=list)
    uncounted: dict[str, int] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    # What each given input value was (``InputValue.describe``), and whether the count holds
    # only at these inputs: shapes came from an onnxruntime run, or a given value chose an If
    # branch, so other values (or other data, for NonZero/TopK sizes) may cost otherwise.
    input_values: dict[str, dict[str, Any]] = field(default_factory=dict)
    at_these_inputs: bool = False

    def to_json(self, per_node: bool = False) -> dict[str, Any]:
        """A JSON-ready dict; per-node rows only when asked for (they can be thousands)."""
        doc: dict[str, Any] = {
            "convention": self.convention,
            "model": self.model,
            "inputs": {k: list(v) for k, v in self.inputs.items()},
            "total": asdict(self.total),
            "by_op_type": {k: asdict(v) for k, v in self.by_op_type.items()},
        }
        if per_node:
            doc["nodes"] = [asdict(n) for n in self.nodes]
        doc["uncounted"] = dict(self.uncounted)
        doc["assumptions"] = list(self.assumptions)
        doc["input_values"] = {k: dict(v) for k, v in self.input_values.items()}
        doc["at_these_inputs"] = self.at_these_inputs
        return doc


def summarize(
    nodes: Iterable[NodeCost], params: int, unique_bytes: int
) -> tuple[Totals, dict[str, OpTypeCost]]:
    """Totals and per-op-type sums (sorted by FLOPs, then MACs) of ``nodes``."""
    by_op: dict[str, OpTypeCost] = {}
    macs = int_macs = flops = nbytes = 0
    for n in nodes:
        row = by_op.get(n.op_type)
        if row is None:
            row = by_op[n.op_type] = OpTypeCost()
        moved = n.bytes_read + n.bytes_written
        row.count += 1
        row.macs += n.macs
        row.int_macs += n.int_macs
        row.flops += n.flops
        row.bytes += moved
        macs += n.macs
        int_macs += n.int_macs
        flops += n.flops
        nbytes += moved
    ordered = dict(sorted(by_op.items(), key=lambda kv: (-kv[1].flops, -kv[1].int_macs, kv[0])))
    totals = Totals(
        macs=macs,
        int_macs=int_macs,
        flops=flops,
        flops_2mac=2 * macs,
        params=params,
        bytes=nbytes,
        unique_bytes=unique_bytes,
        intensity=ratio(flops, nbytes),
    )
    return totals, ordered
