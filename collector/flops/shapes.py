"""Shapes of every tensor: user input dims, then ONNX shape inference with data propagation.

Inference runs on a *light* copy of the model whose large initializers are declared as typed
graph inputs instead of carrying their data. Shapes are identical, but serializing the copy for
the C++ checker and inferencer costs a fraction of serializing the weights, which keeps the
counter near the cost of ``onnx.load`` itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import onnx
from onnx.checker import ValidationError
from onnx.shape_inference import InferenceError

from collector.flops.tensors import (
    FLOAT_TYPES,
    Dims,
    TensorInfo,
    add_initializers,
    add_value_infos,
    dims_of,
)
from shared.errors import ModelError, UsageError

# Initializers at most this many elements keep their data in the light copy, so that data
# propagation can read shape tensors, Resize scales and the like.
SMALL_FLOAT = 64
SMALL_OTHER = 1 << 16


def real_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that are fed at run time (IR < 4 also lists initializers as inputs)."""
    inits = {t.name for t in graph.initializer}
    return [vi for vi in graph.input if vi.name not in inits]


def _user_dims(name: str, dims: Sequence[int]) -> list[int]:
    """Validate one user-given shape: a list of positive ints."""
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
        raise UsageError(
            f"input '{name}': dims must be positive integers, got {list(dims)}",
            hint="write them as NAME=1x3x224x224",
        )
    return list(dims)


def _bind(name: str, declared: Dims, want: list[int], symbols: dict[str, int]) -> None:
    """Check ``want`` against the declared dims and record what each symbolic dim means."""
    if len(declared) != len(want):
        raise UsageError(
            f"input '{name}' has rank {len(declared)} {list(declared)}, you gave {want}",
            hint=f"give {len(declared)} dims for '{name}'",
        )
    for i, (d, w) in enumerate(zip(declared, want, strict=True)):
        if isinstance(d, int) and d != w:
            raise UsageError(
                f"input '{name}' dim {i} is fixed at {d} in the model, you gave {w}",
                hint=f"use {d} for dim {i} of '{name}'",
            )
        if isinstance(d, str) and d != "?":
            if symbols.setdefault(d, w) != w:
                raise UsageError(f"dim '{d}' was given as both {symbols[d]} and {w}")


def resolve_inputs(
    graph: onnx.GraphProto, input_shapes: Mapping[str, Sequence[int]] | None
) -> dict[str, list[int | str] | None]:
    """Dims of each real input after applying ``input_shapes`` and the symbols they define."""
    declared = {vi.name: dims_of(vi.type)[1] for vi in real_inputs(graph)}
    given = dict(input_shapes or {})
    for name in given:
        if name not in declared:
            raise UsageError(
                f"the model has no input named '{name}'",
                hint=f"its inputs are: {', '.join(declared) or '(none)'}",
            )
    symbols: dict[str, int] = {}
    resolved: dict[str, list[int | str] | None] = {}
    for name, dims in declared.items():
        if name in given:
            want = _user_dims(name, given[name])
            if dims is not None:
                _bind(name, dims, want, symbols)
            resolved[name] = list(want)
    for name, dims in declared.items():
        if name not in resolved and dims is not None:
            resolved[name] = [symbols.get(d, d) if isinstance(d, str) else d for d in dims]
        elif name not in resolved:
            resolved[name] = None  # unknown rank and not given: inference cannot help
    return resolved


def _is_small(t: onnx.TensorProto) -> bool:
    """Whether an initializer is small enough to keep its data for data propagation."""
    limit = SMALL_FLOAT if t.data_type in FLOAT_TYPES else SMALL_OTHER
    return math.prod(t.dims) <= limit


def light_model(
    proto: onnx.ModelProto, resolved: Mapping[str, list[int | str] | None]
) -> onnx.ModelProto:
    """A copy without large initializer data, with the resolved dims on the real inputs."""
    light = onnx.ModelProto(ir_version=proto.ir_version)
    light.opset_import.extend(proto.opset_import)
    light.functions.extend(proto.functions)
    src, dst = proto.graph, light.graph
    dst.name = src.name
    dst.node.extend(src.node)
    dst.output.extend(src.output)
    dst.value_info.extend(src.value_info)
    dst.sparse_initializer.extend(src.sparse_initializer)
    for vi in src.input:
        dims = resolved.get(vi.name)
        if dims is None or vi.type.WhichOneof("value") != "tensor_type":
            dst.input.append(vi)
            continue
        dst.input.append(typed_value_info(vi.name, vi.type.tensor_type.elem_type, tuple(dims)))
    listed = {vi.name for vi in src.input}
    for t in src.initializer:
        if _is_small(t) and t.data_location != onnx.TensorProto.EXTERNAL:
            dst.initializer.append(t)
        elif t.name not in listed:
            dst.input.append(typed_value_info(t.name, t.data_type, tuple(t.dims)))
    return light


def check_and_infer(light: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """Run the ONNX checker and strict shape inference with data propagation on ``light``."""
    data = light.SerializeToString()
    try:
        onnx.checker.check_model(data)
    except ValidationError as exc:
        raise ModelError(
            f"{label} fails the ONNX checker: {str(exc).strip().splitlines()[0]}",
            hint="re-export the model, or run onnx.checker.check_model on it for details",
        ) from exc
    try:
        return onnx.shape_inference.infer_shapes(data, strict_mode=True, data_prop=True)
    except (InferenceError, RuntimeError) as exc:
        raise ModelError(
            f"{label}: shapes contradict each other: {' '.join(str(exc).split())}",
            hint="the named node gets inputs of incompatible shapes; fix or re-export the model",
        ) from exc


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
