"""Walk a graph once, node by node, turning shapes into costs.

One pass in topological order, O(nodes + edges): each node looks up its tensors in a dict,
calls its formula, and adds its bytes. Control-flow bodies are walked into their own tally so an
If can keep only its larger branch and a Loop can be multiplied by its trip count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import onnx

from collector.flops.formulas import Formula, FormulaError, OpCost
from collector.flops.graphview import NodeRecord
from collector.flops.registry import (
    CONTROL_FLOW,
    CONTROL_SLOTS,
    DATA_MOVEMENT,
    FORMULAS,
    SHAPE_ONLY,
    TRAINING_OPS,
    WEIGHT_SLOTS,
)
from collector.flops.report import NodeCost
from collector.flops.tally import Tally
from collector.flops.tensors import FLOAT_TYPES, TensorInfo
from collector.flops.uncountable import uncountable
from shared.errors import ModelError

UNKNOWN = TensorInfo.make(0, None)
_NO_COST = OpCost()
_NO_ATTRS: Mapping[str, object] = MappingProxyType({})
_FOLDABLE_AFTER = frozenset({"Conv", "ConvTranspose"})
# Nodes whose float output is a fixed value: a weight when it feeds a weight slot (paddle2onnx
# writes Constant weights; the onnx "light" zoo models write ConstantOfShape fills).
_CONSTANT_VALUES = frozenset({"Constant", "ConstantOfShape"})
_SIMPLE_ATTRS = {
    onnx.AttributeProto.INT: lambda a: a.i,
    onnx.AttributeProto.INTS: lambda a: list(a.ints),
    onnx.AttributeProto.FLOAT: lambda a: a.f,
    onnx.AttributeProto.FLOATS: lambda a: list(a.floats),
    onnx.AttributeProto.STRING: lambda a: a.s.decode("utf-8", "replace"),
}


def parse_attrs(node: onnx.NodeProto) -> dict[str, object]:
    """Scalar and list attributes of a node as plain Python values (graphs/tensors skipped)."""
    out: dict[str, object] = {}
    for a in node.attribute:
        getter = _SIMPLE_ATTRS.get(a.type)
        if getter is not None:
            out[a.name] = getter(a)
    return out


def _moved(
    names: list[str], get: Callable[[str, TensorInfo], TensorInfo], tally: Tally
) -> tuple[list[TensorInfo | None], int, bool]:
    """Infos of ``names`` (None when absent), their bytes, and whether all are static.

    One pass per node side: this is the inner loop of the counter. Unknown sizes are
    recorded, never guessed.
    """
    infos: list[TensorInfo | None] = []
    total, static = 0, True
    tensors = tally.tensors
    for name in names:
        if not name:
            infos.append(None)
            continue
        info = get(name, UNKNOWN)
        infos.append(info)
        if info.nbytes is None:
            tally.unknown_bytes[name] = None
        else:
            total += info.nbytes
            tensors[name] = info.nbytes
        static = static and info.static
    return infos, total, static


@dataclass
class NodeContext:
    """What a node's cost depends on besides its own tensors."""

    table: Mapping[str, TensorInfo]
    float_inits: Mapping[str, int]
    const_floats: dict[str, int]
    producers: dict[str, str]  # outputs of Conv/ConvTranspose only
    unresolved_hint: str
    strict_error: str | None = None
    memo: dict[tuple[object, ...], OpCost] = field(default_factory=dict)  # see _formula_cost


def node_cost(node: NodeRecord, label: str, ctx: NodeContext, tally: Tally) -> NodeCost:
    """Cost of one node (a control-flow node's own bytes only); ModelError if uncountable."""
    get, key = ctx.table.get, node.key
    if key in TRAINING_OPS:
        raise training_op_error(label, key)
    ins, read, static_in = _moved(node.inputs, get, tally)
    outs, written, static_out = _moved(node.outputs, get, tally)
    formula = FORMULAS.get(key)
    cost, note = _NO_COST, ""
    if formula is not None:
        if not (static_in and static_out):
            raise uncountable(node, label, ins + outs, ctx)
        try:
            cost = _formula_cost(formula, node, ins, outs, ctx.memo)
        except FormulaError as exc:
            raise ModelError(
                f"node '{label}' ({key}) has contradictory shapes: {exc}",
                hint="fix or re-export the model; the node's inputs do not fit together",
            ) from exc
        if key == "BatchNormalization" and ctx.producers.get(node.inputs[0]) in _FOLDABLE_AFTER:
            note = "foldable into preceding Conv"
    elif key in CONTROL_FLOW:
        note = "control flow: its body nodes follow, already multiplied"
    elif key not in DATA_MOVEMENT:
        tally.uncounted[key] += 1
        note = "uncounted: no formula for this op type (0 FLOPs, bytes counted)"
    elif (
        key in _CONSTANT_VALUES
        and outs
        and outs[0] is not None
        and outs[0].elem_type in FLOAT_TYPES
    ):
        ctx.const_floats[node.outputs[0]] = _elements(outs[0])
    if key in _FOLDABLE_AFTER:  # only BatchNorm's "foldable" note asks who produced a tensor
        for name in node.outputs:
            ctx.producers[name] = key
    params = _params(node.inputs, key, ctx, tally)
    total = read + written
    intensity = cost.flops / total if total else None
    return NodeCost(
        label, key, cost.macs, cost.int_macs, cost.flops, params, read, written, intensity, note
    )


def training_op_error(label: str, key: str) -> ModelError:
    """The error for a training op: its cost is a backward pass no formula states."""
    return ModelError(
        f"node '{label}' is training op {key}: flopgap counts inference graphs, and ONNX "
        "Runtime's inference build cannot run it either",
        hint="count the inference model: export it without its training ops (eval mode)",
    )


def _formula_cost(
    formula: Formula,
    node: NodeRecord,
    ins: list[TensorInfo | None],
    outs: list[TensorInfo | None],
    memo: dict[tuple[object, ...], OpCost],
) -> OpCost:
    """The formula's cost; for shape-only op types, computed once per distinct shapes."""
    in_shapes = tuple([i.shape if i is not None else None for i in ins])
    out_shapes = tuple([o.shape if o is not None else None for o in outs])
    if node.key not in SHAPE_ONLY:
        return formula(in_shapes, out_shapes, parse_attrs(node.proto))  # type: ignore[arg-type]
    memo_key = (node.key, in_shapes, out_shapes)
    cost = memo.get(memo_key)
    if cost is None:
        cost = memo[memo_key] = formula(in_shapes, out_shapes, _NO_ATTRS)  # type: ignore[arg-type]
    return cost


def _params(in_names: list[str], key: str, ctx: NodeContext, tally: Tally) -> int:
    """Elements of the float initializers (and weight-slot float Constants) this node reads."""
    found = 0
    control, weights = CONTROL_SLOTS.get(key, ()), WEIGHT_SLOTS.get(key, ())
    for i, name in enumerate(in_names):
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
