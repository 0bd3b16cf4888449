"""Concrete input shapes and synthetic input data for the model under test.

Why: a benchmark must feed every input of an arbitrary ONNX model without the user writing code,
and the feeds must exist before the first timestamp, so that nothing is allocated or converted
inside a timed inference. The agent never imports onnx: element types come from onnxruntime's
type strings ("tensor(float)"), and the ONNX element-type codes that onnxruntime needs for types
numpy lacks are spelled out below.

Data is seeded and small in magnitude, so it neither trips models (integers are often indices)
nor produces NaN or infinity.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, TypeAlias

import numpy as np
import onnxruntime as ort

from shared.errors import ModelError, UsageError

Shape = tuple[int, ...]
Feed: TypeAlias = "np.ndarray | ort.OrtValue"
Fill = Callable[[np.random.Generator, Shape], np.ndarray]

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

_SPEC_HINT = "write --input NAME=DxDx..., e.g. --input images=1x3x224x224"


class NodeArgLike(Protocol):
    """What flopgap reads from an ``onnxruntime.NodeArg`` (``session.get_inputs()``)."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def shape(self) -> Sequence[int | str | None]: ...


# --- shapes ------------------------------------------------------------------------------------


def parse_input_spec(text: str) -> tuple[str, Shape]:
    """Parse one ``--input NAME=1x3x224x224`` flag into (name, elements per axis).

    The name is everything before the last ``=``, so names such as ``input:0`` survive. ``NAME=``
    is refused rather than read as rank 0: a scalar input has nothing to resolve, and an empty
    shape is far more often a shell variable that expanded to nothing.
    """
    name, sep, dims = text.rpartition("=")
    name, dims = name.strip(), dims.strip()
    if not sep or not name:
        raise UsageError(f"--input {text!r} names no input", _SPEC_HINT)
    if not dims:
        raise UsageError(
            f"--input {text!r} gives no shape",
            "a scalar (rank-0) input needs no --input; otherwise " + _SPEC_HINT,
        )
    parts = dims.lower().replace(",", "x").split("x")  # 1x3x224x224 or 1,3,224,224
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise UsageError(f"--input {text!r}: dimensions must be positive integers", _SPEC_HINT)
    shape = tuple(int(part) for part in parts)
    if 0 in shape:
        raise UsageError(
            f"--input {text!r}: a zero dimension makes an empty tensor, with nothing to time",
            _SPEC_HINT,
        )
    return name, shape


def parse_input_specs(texts: Sequence[str]) -> dict[str, Shape]:
    """Every ``--input`` flag of one command; naming an input twice is a mistake, not an
    override (`bench`, `flopgap flops` and campaigns all read shapes this way)."""
    shapes: dict[str, Shape] = {}
    for text in texts:
        name, shape = parse_input_spec(text)
        if name in shapes:
            raise UsageError(f"input '{name}' given twice", hint="pass each --input once")
        shapes[name] = shape
    return shapes


def resolve_shapes(
    inputs: Sequence[NodeArgLike], overrides: Mapping[str, Shape]
) -> dict[str, Shape]:
    """Give every model input a concrete shape (elements per axis), from the model or --input.

    An override replaces the whole declared shape. It must keep the rank and agree on every fixed
    dimension, because a disagreement means the user is describing another model. onnxruntime
    reports an input of unknown rank as ``[]``, like a scalar, so such an input takes any rank.
    """
    unknown = sorted(set(overrides) - {arg.name for arg in inputs})
    if unknown:
        listing = "; ".join(f"{arg.name} {_show(arg.shape)}" for arg in inputs)
        raise UsageError(
            f"--input names {', '.join(map(repr, unknown))}, not an input of this model "
            f"(its inputs: {listing})",
            "use one of the listed input names",
        )
    return {
        arg.name: _checked_override(arg, overrides[arg.name])
        if arg.name in overrides
        else _declared_shape(arg)
        for arg in inputs
    }


def _show(shape: Sequence[int | str | None]) -> str:
    """Render a declared shape as ``[batch, 3, ?]`` for messages."""
    return "[" + ", ".join("?" if dim is None else str(dim) for dim in shape) + "]"


def _is_fixed(dim: int | str | None) -> bool:
    """A dimension is fixed when the model gives it as a non-negative integer."""
    return isinstance(dim, int) and dim >= 0


def _suggest(name: str, shape: Sequence[int | str | None]) -> str:
    """The --input flag to pass, with fixed dimensions filled in and each dynamic one as ``?``."""
    return f"--input {name}=" + "x".join(str(dim) if _is_fixed(dim) else "?" for dim in shape)


def _declared_shape(arg: NodeArgLike) -> Shape:
    """The model's own shape for ``arg``, or a UsageError saying which --input would fix it."""
    dynamic = [(pos, dim) for pos, dim in enumerate(arg.shape) if not _is_fixed(dim)]
    if not dynamic:
        return tuple(dim for dim in arg.shape if isinstance(dim, int))
    where = ", ".join(
        f"position {pos} ({dim!r})" if isinstance(dim, str) else f"position {pos} (unnamed)"
        for pos, dim in dynamic
    )
    raise UsageError(
        f"input {arg.name!r} {_show(arg.shape)} has a dynamic dimension at {where} "
        "and no --input gives its size",
        f"pass {_suggest(arg.name, arg.shape)} with each ? replaced by a size",
    )


def _checked_override(arg: NodeArgLike, shape: Shape) -> Shape:
    """Return ``shape`` once it keeps the declared rank and every fixed dimension of ``arg``."""
    declared = list(arg.shape)
    if not declared:
        return shape
    if len(declared) != len(shape):
        raise UsageError(
            f"--input {arg.name}: {len(shape)} dimensions given, but the model declares "
            f"{len(declared)}: {_show(declared)}",
            f"give {len(declared)} dimensions: {_suggest(arg.name, declared)}",
        )
    clashes = [
        f"position {pos}: model {want}, given {got}"
        for pos, (want, got) in enumerate(zip(declared, shape, strict=True))
        if _is_fixed(want) and want != got
    ]
    if clashes:
        raise UsageError(
            f"--input {arg.name}: disagrees with the model's fixed dimensions "
            f"{_show(declared)} ({'; '.join(clashes)})",
            "change only the dynamic dimensions (those not given as integers)",
        )
    return shape


# --- element types -----------------------------------------------------------------------------


def _fill_normal(rng: np.random.Generator, shape: Shape, dtype: type) -> np.ndarray:
    """Standard normal, like typical activations; never NaN or infinity."""
    return np.asarray(rng.standard_normal(shape), dtype=dtype)


def _fill_small_int(rng: np.random.Generator, shape: Shape, dtype: type) -> np.ndarray:
    """0..9: integer inputs are often indices or token ids, and 0..9 is valid for most."""
    return np.asarray(rng.integers(0, 10, size=shape), dtype=dtype)


def _fill_bool(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Fair coin flips."""
    return np.asarray(rng.integers(0, 2, size=shape), dtype=np.bool_)


def _fill_string(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Lower-case ASCII words of 1 to 8 letters, in an object array as onnxruntime expects."""
    count = math.prod(shape)
    letters = rng.integers(ord("a"), ord("z") + 1, size=(count, 8), dtype=np.uint8)
    lengths = rng.integers(1, 9, size=count)
    words = [bytes(row[:n]).decode("ascii") for row, n in zip(letters, lengths, strict=True)]
    out = np.empty(count, dtype=object)
    out[:] = words
    return out.reshape(shape)


def _fill_bfloat16(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Standard normal rounded to nearest-even bfloat16, as its uint16 bit pattern."""
    bits = np.asarray(rng.standard_normal(shape), dtype=np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return (rounded >> np.uint32(16)).astype(np.uint16)


def _float8_values(exponent_bits: int, bias: int, special: str) -> np.ndarray:
    """The value of each of the 256 codes of an 8-bit float, NaN where a code is not finite.

    ``special`` says which codes are not finite: "ieee" (all-ones exponent: inf and NaN),
    "fn" (only S.1111.111 is NaN) or "fnuz" (only 0x80, the would-be negative zero, is NaN).
    """
    mantissa_bits = 7 - exponent_bits
    codes = np.arange(256)
    exponent = (codes >> mantissa_bits) & ((1 << exponent_bits) - 1)
    fraction = (codes & ((1 << mantissa_bits) - 1)) / (1 << mantissa_bits)
    normal = exponent > 0
    magnitude = np.where(normal, 1.0 + fraction, fraction) * np.exp2(
        np.where(normal, exponent, 1) - bias
    )
    values = np.where(codes & 0x80, -magnitude, magnitude)
    if special == "ieee":
        values[exponent == (1 << exponent_bits) - 1] = np.nan
    elif special == "fn":
        values[(codes & 0x7F) == 0x7F] = np.nan
    else:
        values[0x80] = np.nan
    return values


def _fill_float8(rng: np.random.Generator, shape: Shape, values: np.ndarray) -> np.ndarray:
    """Standard normal rounded to the nearest finite code of an 8-bit float, as uint8 codes."""
    finite = np.flatnonzero(np.isfinite(values))
    order = finite[np.argsort(values[finite], kind="stable")]
    grid = values[order]
    x = np.asarray(rng.standard_normal(shape)).reshape(-1)
    upper = np.clip(np.searchsorted(grid, x), 1, len(grid) - 1)
    nearest = upper - ((x - grid[upper - 1]) < (grid[upper] - x))
    return order[nearest].astype(np.uint8).reshape(shape)


def _fill_e8m0(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Powers of two 2**-2..2**2 (codes 125..129): e8m0 has no sign and no zero; it is a scale."""
    return np.asarray(rng.integers(125, 130, size=shape), dtype=np.uint8)


def _fill_packed(rng: np.random.Generator, shape: Shape, bits: int) -> np.ndarray:
    """Sub-byte integers 0..2**(bits-1)-1 (valid signed or not), packed low bits first.

    onnxruntime reads ceil(n*bits/8) bytes from the start of a uint8 buffer that carries the
    logical shape, so the buffer keeps that shape and its tail stays zero.
    """
    per_byte = 8 // bits
    count = math.prod(shape)
    groups = np.zeros((-(-count // per_byte), per_byte), dtype=np.uint8)
    groups.reshape(-1)[:count] = rng.integers(0, 1 << (bits - 1), size=count)
    packed = np.zeros(len(groups), dtype=np.uint8)
    for slot in range(per_byte):
        packed |= groups[:, slot] << np.uint8(bits * slot)
    host = np.zeros(shape, dtype=np.uint8)
    host.reshape(-1)[: len(packed)] = packed
    return host


@dataclass(frozen=True)
class _ElementType:
    """How to make host data for one ONNX element type."""

    fill: Fill
    onnx_code: int | None = None  # set when numpy lacks the type: feed it as an OrtValue
    bits: int = 0  # set for sub-byte types, whose buffer is packed


_ELEMENT_TYPES: dict[str, _ElementType] = {
    **{
        name: _ElementType(partial(_fill_normal, dtype=dtype))
        for name, dtype in (("float", np.float32), ("double", np.float64), ("float16", np.float16))
    },
    **{
        name: _ElementType(partial(_fill_small_int, dtype=np.dtype(name).type))
        for name in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
    },
    "bool": _ElementType(_fill_bool),
    "string": _ElementType(_fill_string),
    "bfloat16": _ElementType(_fill_bfloat16, BFLOAT16),
    **{
        name: _ElementType(partial(_fill_float8, values=_float8_values(*layout)), code)
        for name, code, layout in (
            ("float8e4m3fn", FLOAT8E4M3FN, (4, 7, "fn")),
            ("float8e4m3fnuz", FLOAT8E4M3FNUZ, (4, 8, "fnuz")),
            ("float8e5m2", FLOAT8E5M2, (5, 15, "ieee")),
            ("float8e5m2fnuz", FLOAT8E5M2FNUZ, (5, 16, "fnuz")),
        )
    },
    "float8e8m0": _ElementType(_fill_e8m0, FLOAT8E8M0),
    "uint4": _ElementType(partial(_fill_packed, bits=4), UINT4, bits=4),
    "int4": _ElementType(partial(_fill_packed, bits=4), INT4, bits=4),
    "uint2": _ElementType(partial(_fill_packed, bits=2), UINT2, bits=2),
    "int2": _ElementType(partial(_fill_packed, bits=2), INT2, bits=2),
}
SUPPORTED_ELEMENT_TYPES = tuple(_ELEMENT_TYPES)
_TENSOR_ELEMENT = re.compile(r"tensor\((\w+)\)")


def _element_type(arg: NodeArgLike) -> _ElementType:
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


# --- feeds -------------------------------------------------------------------------------------


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
) -> Feeds:
    """Allocate seeded data for every input, up front, so the timing loop allocates nothing.

    Each input draws from its own generator seeded by (seed, CRC-32 of its name): the same seed
    gives the same bytes, and adding an input to a model leaves the others' data unchanged.
    ``as_ort_values`` forces OrtValue feeds, for models whose outputs need them.
    """
    if seed < 0:
        raise UsageError(f"seed must be >= 0, got {seed}", "pass a non-negative --seed")
    missing = [arg.name for arg in inputs if arg.name not in shapes]
    if missing:
        raise UsageError(
            f"no shape for inputs {missing}", "resolve shapes first with resolve_shapes()"
        )
    kinds = {arg.name: _element_type(arg) for arg in inputs}
    host = {
        name: kind.fill(np.random.default_rng([seed, zlib.crc32(name.encode())]), shapes[name])
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


def _to_ort_value(name: str, host: np.ndarray, kind: _ElementType) -> ort.OrtValue:
    """Wrap ``host`` (no copy) as an OrtValue of its ONNX element type."""
    if kind.onnx_code is not None:
        return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(host, kind.onnx_code)
    if host.dtype == object:
        raise ModelError(
            f"input {name!r} is a string tensor, but this model needs OrtValue feeds "
            "(a type numpy lacks), and onnxruntime cannot make an OrtValue from strings",
            "export the model without string inputs, or with float/int types numpy supports",
        )
    return ort.OrtValue.ortvalue_from_numpy(host)


def _nbytes(host: np.ndarray, kind: _ElementType) -> int:
    """Bytes of tensor data one input hands to onnxruntime."""
    if kind.bits:
        return -(-math.prod(host.shape) * kind.bits // 8)
    if host.dtype == object:
        return sum(len(word.encode()) for word in host.reshape(-1))
    return int(host.nbytes)
