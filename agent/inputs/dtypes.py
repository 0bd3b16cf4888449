"""The element types flopgap can feed, and which of them need OrtValues instead of numpy arrays.

Why: the agent never imports onnx, so element types come from onnxruntime's type strings
("tensor(float)"), and the ONNX element-type codes that onnxruntime needs for types numpy lacks
are spelled out below. A model with such an input or output cannot go through ``session.run``;
it must be run with ``session.run_with_ort_values``, and this module is where that is decided.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from agent.inputs import data
from agent.inputs.data import Fill
from agent.inputs.shapes import NodeArgLike
from shared.errors import ModelError

# ONNX TensorProto.DataType codes of the types numpy has no dtype for (onnx is not importable).
BFLOAT16 = 16
FLOAT8E4M3FN = 17
FLOAT8E4M3FNUZ = 18
FLOAT8E5M2 = 19
FLOAT8E5M2FNUZ = 20
UINT4 = 21
INT4 = 22
FLOAT8E8M0 = 24
UINT2 = 25
INT2 = 26


@dataclass(frozen=True)
class ElementType:
    """How to make host data for one ONNX element type."""

    fill: Fill
    onnx_code: int | None = None  # set when numpy lacks the type: feed it as an OrtValue
    bits: int = 0  # set for sub-byte types, whose buffer is packed


# onnxruntime's element type names that numpy holds natively (others travel as bit patterns).
_FLOATS = {"float": np.float32, "double": np.float64, "float16": np.float16}
_INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
NUMPY_TYPES: dict[str, type] = {**_FLOATS, **{n: np.dtype(n).type for n in _INTS}, "bool": np.bool_}

_ELEMENT_TYPES: dict[str, ElementType] = {
    **{
        name: ElementType(partial(data.fill_normal, dtype=dtype)) for name, dtype in _FLOATS.items()
    },
    **{name: ElementType(partial(data.fill_small_int, dtype=NUMPY_TYPES[name])) for name in _INTS},
    "bool": ElementType(data.fill_bool),
    "string": ElementType(data.fill_string),
    "bfloat16": ElementType(data.fill_bfloat16, BFLOAT16),
    **{
        name: ElementType(partial(data.fill_float8, values=data.float8_values(*layout)), code)
        for name, code, layout in (
            ("float8e4m3fn", FLOAT8E4M3FN, (4, 7, "fn")),
            ("float8e4m3fnuz", FLOAT8E4M3FNUZ, (4, 8, "fnuz")),
            ("float8e5m2", FLOAT8E5M2, (5, 15, "ieee")),
            ("float8e5m2fnuz", FLOAT8E5M2FNUZ, (5, 16, "fnuz")),
        )
    },
    "float8e8m0": ElementType(data.fill_e8m0, FLOAT8E8M0),
    "uint4": ElementType(partial(data.fill_packed, bits=4), UINT4, bits=4),
    "int4": ElementType(partial(data.fill_packed, bits=4), INT4, bits=4),
    "uint2": ElementType(partial(data.fill_packed, bits=2), UINT2, bits=2),
    "int2": ElementType(partial(data.fill_packed, bits=2), INT2, bits=2),
}
SUPPORTED_ELEMENT_TYPES = tuple(_ELEMENT_TYPES)
_TENSOR_ELEMENT = re.compile(r"tensor\((\w+)\)")


def element_type(arg: NodeArgLike) -> ElementType:
    """The fill rule for a tensor input, or a ModelError for anything flopgap cannot feed."""
    match = _TENSOR_ELEMENT.fullmatch(arg.type)
    if match is None:
        raise ModelError(
            f"input {arg.name!r} has type {arg.type}, which is not supported yet: flopgap "
            "feeds only tensor inputs (no sequences, maps, optionals or sparse tensors)",
            "export the model with plain tensor inputs",
        )
    element = _ELEMENT_TYPES.get(match.group(1))
    if element is None:
        raise ModelError(
            f"input {arg.name!r} has element type {match.group(1)}, which flopgap cannot "
            f"synthesize (supported: {', '.join(SUPPORTED_ELEMENT_TYPES)})",
            "export the model with one of the supported input types",
        )
    return element


def numpy_dtype(arg: NodeArgLike) -> np.dtype[Any] | None:
    """The numpy dtype of a tensor input (``tensor(int64)`` -> int64); None when numpy has none
    (bfloat16, float8, sub-byte ints), for strings and for non-tensor inputs."""
    match = _TENSOR_ELEMENT.fullmatch(arg.type)
    kind = NUMPY_TYPES.get(match.group(1)) if match else None
    return None if kind is None else np.dtype(kind)


def output_needs_ort_values(outputs: Sequence[NodeArgLike]) -> bool:
    """True when an output's element type has no numpy dtype (bfloat16, float8, int4, ...).

    ``session.run`` cannot return such outputs as numpy, so the model must be run with
    ``session.run_with_ort_values`` and OrtValue feeds (``synthesize_inputs(as_ort_values=True)``).
    """
    numpy_types = {name for name, kind in _ELEMENT_TYPES.items() if kind.onnx_code is None}
    return any(
        element not in numpy_types
        for arg in outputs
        for element in _TENSOR_ELEMENT.findall(arg.type)
    )
