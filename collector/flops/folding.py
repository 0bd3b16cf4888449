"""Fold the shape arithmetic that ONNX data propagation leaves unevaluated, exactly.

torch exports compute reshape targets and split points at run time: ``Shape -> Gather ->
Div/Mod -> Slice/Reshape``. ONNX data propagation handles Add, Sub and Mul but not Div or Mod,
so every tensor downstream loses its shape. Those chains depend only on static shapes and
constants: onnxruntime evaluates the small subgraph that computes them (a ``Shape`` of a known
tensor becomes a constant), the values go back in as Constant nodes, and ONNX infers again.
No input data is involved, so the result cannot depend on input values, and the costly
whole-model onnxruntime pass (``ort_shapes``) stays the last resort.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import onnx

from collector.flops.graphview import GraphView
from collector.flops.ort_shapes import make_session
from collector.flops.shapes import infer, inferred_table, light_models
from collector.flops.tensors import TensorInfo

MAX_ROUNDS = 8
MAX_VALUE_BYTES = 1 << 19  # a folded value larger than this is not shape arithmetic
# Ops whose output is no larger than their inputs: safe to fold even before their shape is known.
_SMALL_VALUE_OPS = frozenset(
    "Abs Add Cast Ceil Concat Div Equal Floor Gather Greater Identity Less Max Min Mod Mul Neg "
    "Not ReduceMax ReduceMin ReduceProd ReduceSum Reshape Shape Size Slice Sqrt Squeeze Sub "
    "Unsqueeze Where".split()
)
_NEVER = frozenset(
    "Bernoulli If Loop Multinomial RandomNormal RandomNormalLike RandomUniform "
    "RandomUniformLike Scan".split()
)
Replaced = dict[int, list[onnx.NodeProto]]


def _shape_constant(node: onnx.NodeProto, info: TensorInfo) -> onnx.NodeProto:
    """A Constant node holding the value of ``Shape`` (with start/end) or ``Size``."""
    dims = [int(d) for d in info.shape or ()]
    if node.op_type == "Size":
        value = np.array(math.prod(dims), dtype=np.int64)
    else:
        attrs = {a.name: a.i for a in node.attribute}
        value = np.array(dims[attrs.get("start", 0) : attrs.get("end", len(dims)) or None])
        value = value.astype(np.int64)
    return onnx.helper.make_node(
        "Constant", [], [node.output[0]], value=onnx.numpy_helper.from_array(value)
    )


def _foldable(node: onnx.NodeProto, values: set[str], table: Mapping[str, TensorInfo]) -> bool:
    """Whether a node's outputs follow from known values and static shapes, and are small."""
    if node.domain not in ("", "ai.onnx") or node.op_type in _NEVER:
        return False
    if node.op_type in ("Shape", "Size"):
        info = table.get(node.input[0])
        return info is not None and info.static
    if not all(name in values for name in node.input if name):
        return False
    for name in node.output:
        info = table.get(name)
        if info is not None and info.nbytes is not None:
            if info.nbytes > MAX_VALUE_BYTES:
                return False
        elif node.op_type not in _SMALL_VALUE_OPS:
            return False
    return True


def _resolved(node: onnx.NodeProto, table: Mapping[str, TensorInfo]) -> bool:
    """Whether every output of ``node`` has a fully known shape."""
    for name in node.output:
        info = table.get(name)
        if name and (info is None or not info.static):
            return False
    return True


def _plan(
    graph: onnx.GraphProto,
    view: GraphView,
    table: Mapping[str, TensorInfo],
    replaced: Replaced,
    given: Iterable[str] = (),
) -> tuple[dict[str, int], list[str]]:
    """Producer index of every foldable tensor, and the targets worth folding now.

    A target is a computed (not Constant) foldable tensor that either has no known shape
    itself or is read by a node that cannot be folded and still has an output of unknown
    shape: a Reshape target, a Slice end, a Split size.
    """
    values = {t.name for t in view.inits if t.keeps_data} | set(given)
    producer: dict[str, int] = {}
    targets: dict[str, None] = {}
    for i, node in enumerate(graph.node):
        if i in replaced or node.op_type == "Constant" or _foldable(node, values, table):
            values.update(node.output)
            producer.update((o, i) for o in node.output)
            if i not in replaced and node.op_type != "Constant" and not _resolved(node, table):
                targets.update(dict.fromkeys(node.output))
            continue
        if _resolved(node, table):
            continue
        for name in node.input:
            j = producer.get(name)
            if j is not None and j not in replaced and graph.node[j].op_type != "Constant":
                targets.update(dict.fromkeys(graph.node[j].output))
    return producer, list(targets)


def _subgraph(
    proto: onnx.ModelProto,
    table: Mapping[str, TensorInfo],
    replaced: Replaced,
    producer: Mapping[str, int],
    targets: Iterable[str],
    given: Mapping[str, onnx.TensorProto],
) -> onnx.ModelProto:
    """A standalone model computing ``targets`` from constants (and given values) only."""
    graph, needed, stack = proto.graph, set(), list(targets)
    while stack:
        i = producer.get(stack.pop())
        if i is None or i in needed:
            continue
        needed.add(i)
        if i not in replaced and graph.node[i].op_type not in ("Shape", "Size"):
            stack.extend(n for n in graph.node[i].input if n)
    nodes: list[onnx.NodeProto] = []
    for i in sorted(needed):
        node = graph.node[i]
        if i in replaced:
            nodes.extend(replaced[i])
        elif node.op_type in ("Shape", "Size"):
            nodes.append(_shape_constant(node, table[node.input[0]]))
        else:
            nodes.append(node)
    used = {n for node in nodes for n in node.input}
    inits = [t for t in graph.initializer if t.name in used and t.name not in given]
    inits += [t for name, t in given.items() if name in used]
    outputs = [onnx.ValueInfoProto(name=t) for t in targets]
    sub = onnx.helper.make_graph(nodes, "shape_arithmetic", [], outputs, inits)
    # IR >= 4 lets initializers stay out of the graph inputs, as they are here.
    ir_version = max(proto.ir_version, 4)
    return onnx.helper.make_model(
        sub, ir_version=ir_version, opset_imports=list(proto.opset_import)
    )


def fold_shapes(
    proto: onnx.ModelProto,
    resolved: Mapping[str, list[int | str] | None],
    table: dict[str, TensorInfo],
    view: GraphView,
    given: Mapping[str, onnx.TensorProto] | None = None,
    folded: dict[str, onnx.TensorProto] | None = None,
) -> dict[str, TensorInfo]:
    """Fold shape chains round by round until nothing more resolves; returns the new table.

    ``given`` are input values (as tensors) the chains may read; every folded value is also
    put in ``folded``, so that control-flow bodies can read them from the outer scope.
    """
    replaced: Replaced = {}
    given = given or {}
    for _ in range(MAX_ROUNDS):
        producer, targets = _plan(proto.graph, view, table, replaced, given)
        if not targets:
            break
        try:
            model = _subgraph(proto, table, replaced, producer, targets, given)
            arrays = make_session(model.SerializeToString()).run(targets, {})  # type: ignore[attr-defined]
        except Exception:  # onnxruntime cannot evaluate it: leave it to the whole-model pass
            break
        for name, arr in zip(targets, arrays, strict=True):
            tensor = onnx.numpy_helper.from_array(np.asarray(arr), f"{name}:folded")
            node = onnx.helper.make_node("Constant", [], [name], value=tensor)
            replaced.setdefault(producer[name], []).append(node)
            if folded is not None:
                folded[name] = onnx.numpy_helper.from_array(np.asarray(arr), name)
        light = light_models(proto, resolved, view, replaced, list(given.values()))
        table = inferred_table(infer(light[1]), view)
    return table
