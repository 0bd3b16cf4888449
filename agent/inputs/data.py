"""Seeded host data for one tensor, one fill rule per kind of element type.

Why: a benchmark must feed every input of an arbitrary model without the user writing code.
Data is seeded and small in magnitude, so it neither trips models (integers are often indices)
nor produces NaN or infinity. Types numpy lacks (bfloat16, float8, sub-byte integers) come back
as their raw bit patterns in a uint8/uint16 buffer; ``agent.inputs.dtypes`` says which ONNX type
each buffer carries, and ``agent.inputs.feeds`` wraps it as an OrtValue.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from shared.input_specs import Shape

Fill = Callable[[np.random.Generator, Shape], np.ndarray]


def fill_normal(rng: np.random.Generator, shape: Shape, dtype: type) -> np.ndarray:
    """Standard normal, like typical activations; never NaN or infinity."""
    return np.asarray(rng.standard_normal(shape), dtype=dtype)


def fill_small_int(rng: np.random.Generator, shape: Shape, dtype: type) -> np.ndarray:
    """0..9: integer inputs are often indices or token ids, and 0..9 is valid for most."""
    return np.asarray(rng.integers(0, 10, size=shape), dtype=dtype)


def fill_bool(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Fair coin flips."""
    return np.asarray(rng.integers(0, 2, size=shape), dtype=np.bool_)


def fill_string(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Lower-case ASCII words of 1 to 8 letters, in an object array as onnxruntime expects."""
    count = math.prod(shape)
    letters = rng.integers(ord("a"), ord("z") + 1, size=(count, 8), dtype=np.uint8)
    lengths = rng.integers(1, 9, size=count)
    words = [bytes(row[:n]).decode("ascii") for row, n in zip(letters, lengths, strict=True)]
    out = np.empty(count, dtype=object)
    out[:] = words
    return out.reshape(shape)


def fill_bfloat16(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Standard normal rounded to nearest-even bfloat16, as its uint16 bit pattern."""
    bits = np.asarray(rng.standard_normal(shape), dtype=np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return (rounded >> np.uint32(16)).astype(np.uint16)


def float8_values(exponent_bits: int, bias: int, special: str) -> np.ndarray:
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


def fill_float8(rng: np.random.Generator, shape: Shape, values: np.ndarray) -> np.ndarray:
    """Standard normal rounded to the nearest finite code of an 8-bit float, as uint8 codes."""
    finite = np.flatnonzero(np.isfinite(values))
    order = finite[np.argsort(values[finite], kind="stable")]
    grid = values[order]
    x = np.asarray(rng.standard_normal(shape)).reshape(-1)
    upper = np.clip(np.searchsorted(grid, x), 1, len(grid) - 1)
    nearest = upper - ((x - grid[upper - 1]) < (grid[upper] - x))
    return order[nearest].astype(np.uint8).reshape(shape)


def fill_e8m0(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Powers of two 2**-2..2**2 (codes 125..129): e8m0 has no sign and no zero; it is a scale."""
    return np.asarray(rng.integers(125, 130, size=shape), dtype=np.uint8)


def fill_packed(rng: np.random.Generator, shape: Shape, bits: int) -> np.ndarray:
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
