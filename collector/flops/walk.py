"""Walk a graph once, node by node, turning shapes into costs.

One pass in topological order, O(nodes + edges): each node looks up its tensors in a dict,
calls its formula, and adds its bytes. Control-flow bodies are walked into their own tally so an
If can keep only its larger branch and a Loop can be multiplied by its trip count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import onnx

from collector.flops.formulas import FormulaError, OpCost
from collector.flops.registry import CONTROL_SLOTS, DATA_MOVEMENT, FORMULAS, WEIGHT_SLOTS
from collector.flops.report import NodeCost, ratio
from collector.flops.tensors import FLOAT_TYPES, TensorInfo
from shared.errors import ModelError

UNKNOWN = TensorInfo.make(0, None)
_FOLDABLE_AFTER = frozenset({"Conv", "ConvTranspose"})
_SIMPLE_ATTRS = {
    onnx.AttributeProto.INT: lambda a: a.i,
    onnx.AttributeProto.INTS: lambda a: list(a.ints),
    onnx.AttributeProto.FLOAT: lambda a: a.f,
    onnx.AttributeProto.FLOATS: lambda a: list(a.floats),
    onnx.AttributeProto.STRING: lambda a: a.s.decode("utf-8", "replace"),
}


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


def parse_attrs(node: onnx.NodeProto) -> dict[str, object]:
    """Scalar and list attributes of a node as plain Python values (graphs/tensors skipped)."""
    out: dict[str, object] = {}
    for a in node.attribute:
        getter = _SIMPLE_ATTRS.get(a.type)
        if getter is not None:
            out[a.name] = getter(a)
    return out


def _moved(names: list[str], infos: list[TensorInfo | None], tally: Tally) -> int:
    """Bytes of the present tensors among ``infos``; unknown sizes are recorded, not guessed."""
    total = 0
    for name, info in zip(names, infos, strict=True):
        if info is None:
            continue
        if info.nbytes is None:
            tally.unknown_bytes[name] = None
            continue
        total += info.nbytes
        tally.tensors[name] = info.nbytes
    return total


def unknown_dim_error(
    label: str, key: str, names: list[str], infos: list[TensorInfo | None], hint: str
) -> ModelError:
    """The error for a FLOP-bearing node with an unknown dim, naming node, tensor and dim."""
    for name, info in zip(names, infos, strict=True):
        if info is None or info.static:
            continue
        if info.shape is None:
            what = "has an unknown shape"
        else:
            dim = next(j for j, d in enumerate(info.shape) if type(d) is not int)
            what = f"has unknown dim {dim} ('{info.shape[dim]}') in shape {list(info.shape)}"
        return ModelError(f"cannot count node '{label}' ({key}): tensor '{name}' {what}", hint)
    return ModelError(f"cannot count node '{label}' ({key})", hint)


@dataclass
class NodeContext:
    """What a node's cost depends on besides its own tensors."""

    table: Mapping[str, TensorInfo]
    float_inits: Mapping[str, int]
    const_floats: dict[str, int]
    producers: dict[str, str]
    unresolved_hint: str


def node_cost(
    node: onnx.NodeProto, key: str, label: str, ctx: NodeContext, tally: Tally
) -> NodeCost:
    """Cost of one non-control-flow node; raises ModelError when it cannot be counted."""
    get = ctx.table.get
    ins = [get(n, UNKNOWN) if n else None for n in node.input]
    outs = [get(n, UNKNOWN) if n else None for n in node.output]
    formula = FORMULAS.get(key)
    cost, note = OpCost(), ""
    if formula is not None:
        if not all(i is None or i.static for i in ins + outs):
            names = [*node.input, *node.output]
            raise unknown_dim_error(label, key, names, ins + outs, ctx.unresolved_hint)
        in_shapes = [i.shape if i is not None else None for i in ins]
        out_shapes = [o.shape if o is not None else None for o in outs]
        try:
            cost = formula(in_shapes, out_shapes, parse_attrs(node))  # type: ignore[arg-type]
        except FormulaError as exc:
            raise ModelError(
                f"node '{label}' ({key}) has contradictory shapes: {exc}",
                hint="fix or re-export the model; the node's inputs do not fit together",
            ) from exc
        if key == "BatchNormalization" and ctx.producers.get(node.input[0]) in _FOLDABLE_AFTER:
            note = "foldable into preceding Conv"
    elif key not in DATA_MOVEMENT:
        tally.uncounted[key] += 1
        note = "uncounted: no formula for this op type (0 FLOPs, bytes counted)"
    elif key == "Constant" and outs and outs[0] is not None and outs[0].elem_type in FLOAT_TYPES:
        ctx.const_floats[node.output[0]] = _elements(outs[0])
    for name in node.output:
        ctx.producers[name] = key
    return NodeCost(
        name=label,
        op_type=key,
        macs=cost.macs,
        int_macs=cost.int_macs,
        flops=cost.flops,
        params=_params(node, key, ctx, tally),
        bytes_read=(read := _moved(list(node.input), ins, tally)),
        bytes_written=(written := _moved(list(node.output), outs, tally)),
        intensity=ratio(cost.flops, read + written),
        note=note,
    )


def _params(node: onnx.NodeProto, key: str, ctx: NodeContext, tally: Tally) -> int:
    """Elements of the float initializers (and weight-slot float Constants) this node reads."""
    found = 0
    control, weights = CONTROL_SLOTS.get(key, ()), WEIGHT_SLOTS.get(key, ())
    for i, name in enumerate(node.input):
        elems = ctx.float_inits.get(name)
        if elems is not None and i in control:
            continue
        if elems is None and i in weights:
            elems = ctx.const_floats.get(name)
        if elems:
            found += elems
            tally.params[name] = elems
    return found


def _elements(info: TensorInfo) -> int:
    """Element count of a tensor, 0 when its shape is not fully known."""
    if not info.static:
        return 0
    count = 1
    for d in info.shape or ():
        count *= int(d)
    return count
