"""Given input values (``--input-value``, ``--input-file``, a job's ``input_values``), checked
against the loaded session's inputs.

Why: an input whose value steers the model (a sample rate picking an ``If`` branch, a state, a
mask) must be fed what the user gave, never seeded noise; and an integer or boolean scalar with
no value is refused before anything is timed, since a random one would pick the branch being
measured. The grammar, wire form and checks are ``shared.input_values``; this module maps
onnxruntime's type strings to numpy dtypes (the agent never imports onnx) and says what to do
when an inference fails in control flow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.inputs.dtypes import numpy_dtype
from agent.inputs.shapes import NodeArgLike
from shared.errors import UsageError
from shared.input_values import (
    Declared,
    InputValue,
    check_names,
    missing_scalar_values,
    missing_value_error,
)

_CONTROL_FLOW = re.compile(r"\b(If|Loop|Scan) node\b")


def _declared(arg: NodeArgLike) -> Declared:
    """The dims to check a value against. onnxruntime shows a scalar and an input of unknown
    rank alike, as ``[]``; it is taken as a scalar, since ORT does not check a scalar's rank and
    a tensor fed to one fails later, in whatever node reads it (a scalar ``If`` condition)."""
    return list(arg.shape)


def given_arrays(
    inputs: Sequence[NodeArgLike], values: Mapping[str, InputValue]
) -> dict[str, npt.NDArray[Any]]:
    """Each given value as the array fed to its input; refuses unknown names, values that do not
    fit the input's dtype or dims, and integer/bool scalar inputs left without a value."""
    check_names(values, [arg.name for arg in inputs])
    kinds = [(arg.name, _kind(arg), _declared(arg)) for arg in inputs]
    missing = missing_scalar_values(kinds, values)
    if missing:
        raise missing_value_error(missing)
    out: dict[str, npt.NDArray[Any]] = {}
    for arg in inputs:
        value = values.get(arg.name)
        if value is None:
            continue
        dtype = numpy_dtype(arg)
        if dtype is None:
            raise UsageError(
                f"input '{arg.name}' has type {arg.type}, which a given value cannot fill",
                hint=f"drop the value for '{arg.name}' and let flopgap synthesize it",
            )
        array = value.to_array(arg.name, dtype, _declared(arg))
        out[arg.name] = np.require(array, requirements="C")  # ascontiguousarray makes 0-d 1-d
    return out


def _kind(arg: NodeArgLike) -> str:
    dtype = numpy_dtype(arg)
    return "" if dtype is None else dtype.kind


def steering_inputs(inputs: Sequence[NodeArgLike], values: Mapping[str, InputValue]) -> list[str]:
    """Integer or boolean inputs fed synthesized data: the ones whose values may steer an ``If``
    or a ``Loop`` (a count, a flag, an index) and that the user may need to give."""
    return [arg.name for arg in inputs if arg.name not in values and _kind(arg) in ("i", "u", "b")]


def inference_hint(
    error_text: str, inputs: Sequence[NodeArgLike], values: Mapping[str, InputValue]
) -> str:
    """What to do after a failed inference: the input values when the failure is in control
    flow or synthesized integers may steer it, else the shapes."""
    steering = steering_inputs(inputs, values)
    if not _CONTROL_FLOW.search(error_text) and not steering:
        return "check the input shapes (--input) and that the model runs in onnxruntime"
    if steering:
        names = ", ".join(f"'{n}'" for n in steering)
        example = " ".join(f"--input-value {n}=VALUE" for n in steering)
        return (
            f"inputs {names} got synthesized data, which may have sent control flow down a "
            f"branch this model does not run: give their values, e.g. {example}"
        )
    return (
        "the failing node is control flow, whose branch the input values decide: give them with "
        "--input-value NAME=VALUE or --input-file NAME=FILE.npy, and check --input shapes"
    )
