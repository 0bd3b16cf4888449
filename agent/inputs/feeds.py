"""Build the feeds of one model: seeded data for every input, made before the first timestamp.

Why: nothing may be allocated or converted inside a timed inference, so every input is
synthesized, and wrapped as an OrtValue when the model needs ``run_with_ort_values``, up front.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
import onnxruntime as ort

from agent.inputs.dtypes import ElementType, element_type, output_needs_ort_values
from agent.inputs.shapes import NodeArgLike, resolve_shapes
from agent.inputs.values import given_arrays
from shared.errors import ModelError, UsageError
from shared.input_specs import Shape
from shared.input_values import InputValue, with_value_shapes

Feed: TypeAlias = "np.ndarray | ort.OrtValue"


@dataclass(frozen=True)
class Feeds:
    """Every input of one model, built once and reused by each timed inference.

    ``arrays`` goes to ``session.run`` (numpy arrays) or, when ``needs_ort_values``, to
    ``session.run_with_ort_values`` (all OrtValues). ``nbytes`` is the tensor data handed to
    onnxruntime per inference, in bytes (packed size for sub-byte types, UTF-8 for strings).
    ``host`` holds the numpy buffer behind each feed: an OrtValue borrows that memory without a
    copy, so the buffers must live as long as the feeds.
    """

    arrays: dict[str, Feed]
    needs_ort_values: bool
    nbytes: int
    host: dict[str, np.ndarray] = field(repr=False, compare=False)


def synthesize_inputs(
    inputs: Sequence[NodeArgLike],
    shapes: Mapping[str, Shape],
    seed: int = 0,
    *,
    as_ort_values: bool = False,
    given: Mapping[str, np.ndarray] | None = None,
) -> Feeds:
    """Allocate seeded data for every input, up front, so the timing loop allocates nothing.

    Each input draws from its own generator seeded by (seed, CRC-32 of its name): the same seed
    gives the same bytes, and adding an input to a model leaves the others' data unchanged.
    ``as_ort_values`` forces OrtValue feeds, for models whose outputs need them. ``given`` holds
    the arrays of inputs whose values the user gave (``agent.inputs.values.given_arrays``):
    they are fed as they are, and only the other inputs are synthesized.
    """
    if seed < 0:
        raise UsageError(f"seed must be >= 0, got {seed}", "pass a non-negative --seed")
    missing = [arg.name for arg in inputs if arg.name not in shapes]
    if missing:
        raise UsageError(
            f"no shape for inputs {missing}", "resolve shapes first with resolve_shapes()"
        )
    kinds = {arg.name: element_type(arg) for arg in inputs}
    given = given or {}
    host = {
        name: given[name]
        if name in given
        else kind.fill(np.random.default_rng([seed, zlib.crc32(name.encode())]), shapes[name])
        for name, kind in kinds.items()
    }
    needs = as_ort_values or any(kind.onnx_code is not None for kind in kinds.values())
    arrays: dict[str, Feed] = (
        {name: _to_ort_value(name, host[name], kinds[name]) for name in host}
        if needs
        else dict(host)
    )
    nbytes = sum(_nbytes(host[name], kinds[name]) for name in host)
    return Feeds(arrays=arrays, needs_ort_values=needs, nbytes=nbytes, host=host)


def _to_ort_value(name: str, host: np.ndarray, kind: ElementType) -> ort.OrtValue:
    """Wrap ``host`` (no copy) as an OrtValue of its ONNX element type."""
    if kind.onnx_code is not None:
        try:
            return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(host, kind.onnx_code)
        except RuntimeError as exc:  # onnxruntime 1.23 (the newest on Python 3.10) lacks some
            raise ModelError(
                f"input {name!r} has ONNX element type {kind.onnx_code}, which onnxruntime "
                f"{ort.__version__} cannot feed: {exc}",
                "use a newer onnxruntime (1.32 feeds bfloat16, float8, int4 and int2), which "
                "needs Python 3.11 or newer, or export the model with float16/float32 inputs",
            ) from exc
    if host.dtype == object:
        raise ModelError(
            f"input {name!r} is a string tensor, but this model needs OrtValue feeds "
            "(a type numpy lacks), and onnxruntime cannot make an OrtValue from strings",
            "export the model without string inputs, or with float/int types numpy supports",
        )
    return ort.OrtValue.ortvalue_from_numpy(host)


def _nbytes(host: np.ndarray, kind: ElementType) -> int:
    """Bytes of tensor data one input hands to onnxruntime."""
    if kind.bits:
        return -(-math.prod(host.shape) * kind.bits // 8)
    if host.dtype == object:
        return sum(len(word.encode()) for word in host.reshape(-1))
    return int(host.nbytes)


def model_feeds(
    inputs: Sequence[NodeArgLike],
    outputs: Sequence[NodeArgLike],
    shapes: Mapping[str, Shape],
    values: Mapping[str, InputValue],
    seed: int,
) -> tuple[dict[str, Shape], Feeds]:
    """Every feed of a loaded session, and the shape of each: the given values (checked against
    the inputs, which refuses a missing integer scalar), then seeded data for the rest.

    The measurement and the per-op profiling pass both build their feeds here, so the profiled
    run takes the same branch as the timed one.
    """
    arrays = given_arrays(inputs, values)
    resolved = resolve_shapes(
        inputs, with_value_shapes(shapes, {n: a.shape for n, a in arrays.items()})
    )
    feeds = synthesize_inputs(
        inputs, resolved, seed, as_ort_values=output_needs_ort_values(outputs), given=arrays
    )
    return resolved, feeds
