"""Shapes of every tensor: user input dims, then ONNX shape inference with data propagation.

Inference runs on a *light* copy of the model whose large initializers are declared as typed
graph inputs instead of carrying their data. Shapes are identical, but serializing the copy for
the C++ checker and inferencer costs a fraction of serializing the weights, which keeps the
counter near the cost of ``onnx.load`` itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import onnx
from onnx.checker import ValidationError
from onnx.shape_inference import InferenceError

from collector.flops.tensors import (
    FLOAT_TYPES,
    Dims,
    TensorInfo,
    add_initializers,
    add_value_infos,
)
from shared.errors import ModelError

# Initializers at most this many elements keep their data in the light copy, so that data
# propagation can read shape tensors, Resize scales and the like.
SMALL_FLOAT = 64
SMALL_OTHER = 1 << 16


def keeps_data(t: onnx.TensorProto) -> bool:
    """Whether an initializer is small (and inline) enough to keep its data in light copies."""
    limit = SMALL_FLOAT if t.data_type in FLOAT_TYPES else SMALL_OTHER
    return math.prod(t.dims) <= limit and t.data_location != onnx.TensorProto.EXTERNAL


def light_models(
    proto: onnx.ModelProto,
    resolved: Mapping[str, list[int | str] | None],
    replaced: Mapping[int, list[onnx.NodeProto]] | None = None,
) -> tuple[bytes, bytes]:
    """Serialized copies without large weight data, for the checker and for inference.

    Both carry the resolved dims on the real inputs. For the checker, large initializers are
    typed graph inputs (it insists that initializers hold data); for inference, large float
    ones are initializers with dims but no data, because ONNX data propagation slows down
    with every extra graph input. The common part is serialized once: two serialized protos
    concatenated parse as their merge, so each variant only appends its own small patch.
    ``replaced`` swaps main-graph nodes (by index) for others, e.g. folded Constants.
    """
    light = onnx.ModelProto(ir_version=proto.ir_version)
    light.opset_import.extend(proto.opset_import)
    light.functions.extend(proto.functions)
    src, dst = proto.graph, light.graph
    dst.name = src.name
    _copy_nodes(src, dst, replaced or {})
    dst.output.extend(src.output)
    # Exporters' value_info may describe other input sizes than the user's; ONNX re-infers
    # standard ops itself, so keep annotations only for custom ops, which it cannot infer.
    custom = {o for n in src.node if n.domain not in ("", "ai.onnx") for o in n.output}
    if custom:
        dst.value_info.extend(v for v in src.value_info if v.name in custom)
    dst.sparse_initializer.extend(src.sparse_initializer)
    for vi in src.input:
        dims = resolved.get(vi.name)
        if dims is None or vi.type.WhichOneof("value") != "tensor_type":
            dst.input.append(vi)
            continue
        dst.input.append(typed_value_info(vi.name, vi.type.tensor_type.elem_type, tuple(dims)))
    listed = {vi.name for vi in src.input}
    for_check, for_infer = onnx.ModelProto(), onnx.ModelProto()
    for t in src.initializer:
        if keeps_data(t):
            dst.initializer.append(t)
            continue
        if t.name not in listed:
            for_check.graph.input.append(typed_value_info(t.name, t.data_type, tuple(t.dims)))
        if t.data_type in FLOAT_TYPES:
            stub = for_infer.graph.initializer.add()
            stub.name, stub.data_type = t.name, t.data_type
            stub.dims.extend(t.dims)
        elif t.name not in listed:
            for_infer.graph.input.append(typed_value_info(t.name, t.data_type, tuple(t.dims)))
    common = light.SerializeToString()
    return common + for_check.SerializeToString(), common + for_infer.SerializeToString()


def _copy_nodes(
    src: onnx.GraphProto, dst: onnx.GraphProto, replaced: Mapping[int, list[onnx.NodeProto]]
) -> None:
    """Copy the nodes of ``src``, in runs between replaced ones (one C-level copy per run)."""
    start = 0
    for index in sorted(replaced):
        dst.node.extend(src.node[start:index])
        dst.node.extend(replaced[index])
        start = index + 1
    dst.node.extend(src.node[start:] if start else src.node)


def infer(data: bytes) -> onnx.ModelProto:
    """Shape inference with data propagation, strict if possible, else lenient."""
    try:
        return onnx.shape_inference.infer_shapes(data, strict_mode=True, data_prop=True)
    except (InferenceError, RuntimeError):
        return onnx.shape_inference.infer_shapes(data, strict_mode=False, data_prop=True)


def check_and_infer(light: tuple[bytes, bytes], label: str) -> tuple[onnx.ModelProto, str | None]:
    """Check ``light``, then infer shapes with data propagation; also return the strict error.

    Strict inference names the node whose shapes contradict each other, but it also rejects
    some valid models (onnx expands function ops such as MeanVarianceNormalization and can
    trip over the expansion). So a strict failure is kept as evidence and inference is redone
    leniently; the counter reports it only if the named node then cannot be counted.
    """
    for_check, data = light
    try:
        onnx.checker.check_model(for_check)
    except ValidationError as exc:
        raise ModelError(
            f"{label} fails the ONNX checker: {str(exc).strip().splitlines()[0]}",
            hint="re-export the model, or run onnx.checker.check_model on it for details",
        ) from exc
    try:
        return onnx.shape_inference.infer_shapes(data, strict_mode=True, data_prop=True), None
    except (InferenceError, RuntimeError) as exc:
        strict_error = " ".join(str(exc).split())
    try:
        lenient = onnx.shape_inference.infer_shapes(data, strict_mode=False, data_prop=True)
    except (InferenceError, RuntimeError) as exc:
        raise ModelError(
            f"{label}: ONNX shape inference failed: {strict_error}",
            hint="the named node gets inputs it cannot accept; fix or re-export the model",
        ) from exc
    return lenient, strict_error


def inferred_table(inferred: onnx.ModelProto, proto: onnx.ModelProto) -> dict[str, TensorInfo]:
    """Type and shape of every main-graph tensor known after inference."""
    table: dict[str, TensorInfo] = {}
    add_initializers(table, proto.graph.initializer)
    graph = inferred.graph
    for infos in (graph.input, graph.value_info, graph.output):
        add_value_infos(table, infos)
    return table


def typed_value_info(name: str, elem_type: int, dims: Dims) -> onnx.ValueInfoProto:
    """A tensor ValueInfo whose unknown dims (``"?"``) stay anonymous, not a shared symbol."""
    vi = onnx.ValueInfoProto(name=name)
    tensor_type = vi.type.tensor_type
    tensor_type.elem_type = elem_type
    tensor_type.shape.SetInParent()
    for d in dims:
        dim = tensor_type.shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        elif d != "?":
            dim.dim_param = d
    return vi


def unresolved(graph: onnx.GraphProto, table: Mapping[str, TensorInfo]) -> list[str]:
    """Main-graph node outputs whose shape is not fully known.

    Node inputs need no check: they are graph inputs, initializers or other nodes' outputs.
    """
    return [
        name
        for node in graph.node
        for name in node.output
        if name and not (name in table and table[name].static)
    ]
