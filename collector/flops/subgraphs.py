"""Shapes inside If/Loop/Scan bodies, and how many times a body runs.

``onnx.shape_inference`` checks subgraphs but does not write their tensor shapes back, so each
body is inferred on its own: its formal inputs get the shapes the control-flow node feeds it and
its outer-scope references get the shapes already known in the enclosing graph. An outer-scope
reference whose value is known (an initializer, a Constant, a folded shape, a given input
value) goes in as an initializer with its data, so data propagation sees it: a Reshape in a
branch whose target is a main-graph initializer gets its output shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import onnx
from onnx.shape_inference import InferenceError

from collector.flops.folding import fold_shapes
from collector.flops.graphview import SMALL_FLOAT, SMALL_OTHER, GraphView
from collector.flops.shapes import inferred_table, unresolved
from collector.flops.tensors import (
    FLOAT_TYPES,
    Dims,
    TensorInfo,
    dims_of,
    typed_value_info,
)

ConstLookup = Callable[[str], "onnx.TensorProto | None"]


def subgraphs(node: onnx.NodeProto) -> dict[str, onnx.GraphProto]:
    """The graph attributes of a node by attribute name (then_branch, else_branch, body)."""
    return {a.name: a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH}


def free_names(graph: onnx.GraphProto) -> set[str]:
    """Names a graph (or its nested graphs) reads from an enclosing scope."""
    defined = {vi.name for vi in graph.input} | {t.name for t in graph.initializer}
    used: set[str] = set()
    for node in graph.node:
        used.update(node.input)
        for sub in subgraphs(node).values():
            used |= free_names(sub)
        defined.update(node.output)
    return used - defined - {""}


def _int_attr(node: onnx.NodeProto, name: str, default: int) -> int:
    """An INT attribute of ``node``."""
    return next((a.i for a in node.attribute if a.name == name), default)


def _formal_dims(
    node: onnx.NodeProto, body: onnx.GraphProto, parent: Mapping[str, TensorInfo]
) -> list[tuple[int, Dims | None]]:
    """(elem_type, dims) for each formal input of a Loop or Scan body; If has none."""
    found: list[tuple[int, Dims | None]] = []
    n_state = len(node.input) - _int_attr(node, "num_scan_inputs", 0)
    axes = [a.ints for a in node.attribute if a.name == "scan_input_axes"]
    for k, vi in enumerate(body.input):
        elem, dims = dims_of(vi.type)
        outer = node.input[k] if node.op_type == "Scan" else (node.input[k] if k >= 2 else "")
        info = parent.get(outer) if outer else None
        if node.op_type == "Loop" and k < 2:
            elem, dims = (onnx.TensorProto.INT64 if k == 0 else onnx.TensorProto.BOOL), ()
        elif info is not None and info.shape is not None:
            elem, dims = elem or info.elem_type, info.shape
            if node.op_type == "Scan" and k >= n_state:
                axis = list(axes[0])[k - n_state] if axes else 0
                axis = axis % len(dims) if dims else 0
                dims = dims[:axis] + dims[axis + 1 :]
        found.append((elem, dims))
    return found


def body_table(
    node: onnx.NodeProto,
    body: onnx.GraphProto,
    parent: Mapping[str, TensorInfo],
    template: onnx.ModelProto,
    consts: ConstLookup | None = None,
) -> dict[str, TensorInfo]:
    """Infer the shapes of ``body`` as a standalone model, fed from the enclosing graph."""
    # IR >= 4 lets the outer-scope values be initializers that are not graph inputs.
    model = onnx.ModelProto(ir_version=max(template.ir_version, 4))
    model.opset_import.extend(template.opset_import)
    model.functions.extend(template.functions)
    g = model.graph
    g.name = body.name or "body"
    g.node.extend(body.node)
    g.initializer.extend(body.initializer)
    g.output.extend(body.output)
    g.value_info.extend(body.value_info)
    for vi, (elem, dims) in zip(body.input, _formal_dims(node, body, parent), strict=True):
        g.input.append(typed_value_info(vi.name, elem, dims) if dims is not None else vi)
    for name in sorted(free_names(body)):
        info = parent.get(name)
        value = _outer_value(name, consts)
        if value is not None:
            g.initializer.append(value)
        elif info is not None and info.shape is not None:
            g.input.append(typed_value_info(name, info.elem_type, info.shape))
        elif info is not None:
            g.input.append(onnx.helper.make_tensor_value_info(name, info.elem_type, None))
    view = GraphView.read(g)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    table = inferred_table(inferred, view)
    if unresolved(view, table):  # shape arithmetic inside the body (a computed Pad, Reshape)
        try:
            table = fold_shapes(model, {}, table, view)
        except (InferenceError, RuntimeError):  # the body re-inferred leniently still fails
            pass
    return table


def _outer_value(name: str, consts: ConstLookup | None) -> onnx.TensorProto | None:
    """The known value of outer-scope ``name``, named so, if small enough to carry."""
    value = consts(name) if consts is not None else None
    if value is None or value.data_location == onnx.TensorProto.EXTERNAL:
        return None
    limit = SMALL_FLOAT if value.data_type in FLOAT_TYPES else SMALL_OTHER
    if math.prod(value.dims) > limit:
        return None
    if value.name != name:
        named = onnx.TensorProto()
        named.CopyFrom(value)
        named.name = name
        return named
    return value


def static_int(name: str, lookup: ConstLookup) -> int | None:
    """The value of a one-element integer/bool constant or initializer, else None."""
    tensor = lookup(name) if name else None
    if tensor is None:
        return None
    arr = onnx.numpy_helper.to_array(tensor)
    return int(arr.reshape(-1)[0]) if arr.size == 1 else None


def loop_trips(node: onnx.NodeProto, lookup: ConstLookup) -> tuple[int | None, str | None]:
    """(trip count, caveat) of a Loop: the static ``M``, or None when it is only known at run."""
    trips = static_int(node.input[0] if node.input else "", lookup)
    cond_name = node.input[1] if len(node.input) > 1 else ""
    cond = static_int(cond_name, lookup) if cond_name else 1
    caveat = None
    if trips is not None and cond != 1:
        caveat = f"counted M={trips} iterations, an upper bound (the loop condition may stop it)"
    return trips, caveat


def scan_trips(node: onnx.NodeProto, parent: Mapping[str, TensorInfo]) -> int | None:
    """Iterations of a Scan: the length of its first scan input along its scan axis."""
    n_scan = _int_attr(node, "num_scan_inputs", 0)
    first = node.input[len(node.input) - n_scan] if n_scan else ""
    info = parent.get(first)
    if info is None or not info.static or not info.shape:
        return None
    axes = [list(a.ints) for a in node.attribute if a.name == "scan_input_axes"]
    axis = axes[0][0] % len(info.shape) if axes and axes[0] else 0
    return int(info.shape[axis])
