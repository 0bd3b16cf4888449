"""The user's input values, checked against the model and turned into arrays and dims.

Why: a value fixes an input's shape as surely as ``--input`` does, and more: it can decide an
``If`` branch or a data-dependent size. So each value is checked once against its input's ONNX
dtype and declared dims (``shared.input_values``, the same words as ``flopgap-agent bench``),
its shape becomes that input's dims, and the arrays feed folding, ``If`` conditions and the
onnxruntime fallback, which synthesizes only the inputs left without a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx

from collector.flops.graphview import SMALL_FLOAT, SMALL_OTHER
from collector.flops.inputs import real_inputs
from collector.flops.tensors import dims_of
from shared.input_values import (
    InputValue,
    check_names,
    missing_scalar_values,
    with_value_shapes,
)

Arrays = dict[str, npt.NDArray[Any]]


def input_dtype(vi: onnx.ValueInfoProto) -> np.dtype[Any]:
    """The numpy dtype of a tensor input (its ONNX element type)."""
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type))


def value_arrays(graph: onnx.GraphProto, values: Mapping[str, InputValue] | None) -> Arrays:
    """Each given value as an array of its input's dtype; UsageError for a misfit or stray."""
    if not values:
        return {}
    inputs = {vi.name: vi for vi in real_inputs(graph)}
    check_names(values, list(inputs))
    arrays: Arrays = {}
    for name, value in values.items():
        vi = inputs[name]
        declared = dims_of(vi.type)[1]
        shown = None if declared is None else [d if d != "?" else None for d in declared]
        arrays[name] = value.to_array(name, input_dtype(vi), shown)
    return arrays


def merge_shapes(
    input_shapes: Mapping[str, Sequence[int]] | None, arrays: Arrays
) -> dict[str, Sequence[int]] | None:
    """``input_shapes`` plus each value's shape (``shared.input_values.with_value_shapes``)."""
    if not arrays:
        return dict(input_shapes) if input_shapes else None
    merged = with_value_shapes(input_shapes or {}, {n: a.shape for n, a in arrays.items()})
    return {name: list(dims) for name, dims in merged.items()}


def missing_switches(graph: onnx.GraphProto, arrays: Arrays) -> list[str]:
    """Integer/bool scalar inputs with no value, which a synthesized run would make up."""
    rows = []
    for vi in real_inputs(graph):
        if vi.type.WhichOneof("value") != "tensor_type":
            continue
        declared = dims_of(vi.type)[1]
        rows.append((vi.name, input_dtype(vi).kind, declared))
    return missing_scalar_values(rows, dict.fromkeys(arrays))  # type: ignore[arg-type]


def shown_values(values: Mapping[str, InputValue] | None) -> dict[str, dict[str, Any]]:
    """What a report says about each value (``InputValue.describe``)."""
    return {name: v.describe() for name, v in (values or {}).items()}


def value_tensors(arrays: Arrays) -> list[onnx.TensorProto]:
    """The small given values as tensors, for data propagation and folding to read.

    Large ones (real audio or images) decide no shape arithmetic and would only slow
    inference down; they still feed the onnxruntime fallback and If conditions.
    """
    out = []
    for name, array in arrays.items():
        limit = SMALL_OTHER if array.dtype.kind in "biu" else SMALL_FLOAT
        if array.size <= limit:
            out.append(onnx.numpy_helper.from_array(np.asarray(array, order="C"), name))
    return out
