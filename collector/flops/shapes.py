"""Shapes of every tensor: user input dims, then ONNX shape inference with data propagation.

Inference runs on a *light* copy of the model whose large initializers are declared as typed
graph inputs instead of carrying their data. Shapes are identical, but serializing the copy for
the C++ checker and inferencer costs a fraction of serializing the weights, which keeps the
counter near the cost of ``onnx.load`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import onnx
from onnx.checker import ValidationError
from onnx.shape_inference import InferenceError

from collector.flops import wire
from collector.flops.graphview import GraphView
from collector.flops.tensors import (
    FLOAT_TYPES,
    Dims,
    TensorInfo,
    add_initializers,
    add_value_infos,
    typed_value_info,
)
from shared.errors import ModelError


def light_models(
    proto: onnx.ModelProto,
    resolved: Mapping[str, list[int | str] | None],
    view: GraphView,
    replaced: Mapping[int, list[onnx.NodeProto]] | None = None,
    values: Sequence[onnx.TensorProto] = (),
) -> tuple[bytes, bytes]:
    """Serialized copies without large weight data, for the checker and for inference.

    Both carry the resolved dims on the real inputs. For the checker, large initializers are
    typed graph inputs (it insists that initializers hold data); for inference, large float
    ones are initializers with dims but no data, because ONNX data propagation slows down
    with every extra graph input. The common part is serialized once: two serialized protos
    concatenated parse as their merge, so each variant only appends its own patch, built
    from cached byte pieces (``wire``). ``replaced`` swaps main-graph nodes (by index) for
    others, e.g. folded Constants. ``values`` are given input values, added as initializers of
    the same name so that data propagation reads them (a Reshape target fed by an input).
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
    custom = view.custom_outputs()
    if custom:
        dst.value_info.extend(v for v in src.value_info if v.name in custom)
    dst.sparse_initializer.extend(src.sparse_initializer)
    for vi in src.input:
        dims = resolved.get(vi.name)
        if dims is None or vi.type.WhichOneof("value") != "tensor_type":
            dst.input.append(vi)
            continue
        dst.input.append(typed_value_info(vi.name, vi.type.tensor_type.elem_type, tuple(dims)))
    dst.initializer.extend(values)
    listed = {vi.name for vi in src.input}
    check_inputs, infer_inputs, stubs = [], [], []
    for t in view.inits:
        if t.keeps_data:
            dst.initializer.append(t.proto)
            continue
        if t.name not in listed:
            check_inputs.append(_value_info(t.name, t.data_type, t.dims))
        if t.data_type in FLOAT_TYPES:
            stubs.append(_stub_tensor(t.name, t.data_type, t.dims))
        elif t.name not in listed:
            infer_inputs.append(_value_info(t.name, t.data_type, t.dims))
    common = light.SerializeToString()
    return common + wire.graph_patch(check_inputs, []), common + wire.graph_patch(
        infer_inputs, stubs
    )


@lru_cache(maxsize=4096)
def _type_bytes(elem_type: int, dims: Dims) -> bytes:
    """Serialized ValueInfoProto fields other than the name, for a tensor type."""
    vi = typed_value_info("", elem_type, dims)
    vi.ClearField("name")  # proto2: a name set to "" would still be written
    return vi.SerializeToString()


@lru_cache(maxsize=4096)
def _stub_bytes(elem_type: int, dims: tuple[int, ...]) -> bytes:
    """Serialized TensorProto fields of a data-less tensor: element type and dims."""
    return onnx.TensorProto(data_type=elem_type, dims=dims).SerializeToString()


def _value_info(name: str, elem_type: int, dims: Dims) -> bytes:
    """A serialized tensor ValueInfoProto, the same bytes as ``typed_value_info`` gives."""
    return wire.field(wire.VALUE_INFO_NAME, name.encode()) + _type_bytes(elem_type, dims)


def _stub_tensor(name: str, elem_type: int, dims: tuple[int, ...]) -> bytes:
    """A serialized TensorProto with a name, type and dims but no data."""
    return _stub_bytes(elem_type, dims) + wire.field(wire.TENSOR_NAME, name.encode())


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


def inferred_table(inferred: onnx.ModelProto, view: GraphView) -> dict[str, TensorInfo]:
    """Type and shape of every main-graph tensor known after inference."""
    table: dict[str, TensorInfo] = {}
    add_initializers(table, ((t.name, t.data_type, t.dims) for t in view.inits))
    graph = inferred.graph
    for infos in (graph.input, graph.value_info, graph.output):
        add_value_infos(table, infos)
    return table


def unresolved(view: GraphView, table: Mapping[str, TensorInfo]) -> list[str]:
    """Main-graph node outputs whose shape is not fully known.

    Node inputs need no check: they are graph inputs, initializers or other nodes' outputs.
    """
    get = table.get
    return [
        name
        for node in view.nodes
        for name in node.outputs
        if name and not getattr(get(name), "static", False)
    ]
