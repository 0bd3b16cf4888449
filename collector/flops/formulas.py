"""Core types and family factories for the per-op cost formulas.

Every formula is a small pure function of shapes and attributes (never protos), so it can be
checked by hand: ``fn(ins, outs, attrs) -> OpCost``. ``ins``/``outs`` hold one static shape per
node input/output (``None`` for an absent optional input). The counting convention is the one
in ``docs/FLOPS.md``: MACs only for Conv, ConvTranspose, Gemm, MatMul, Einsum (and the
attention contrib ops), FLOPs = 2 x MACs plus per-element counts for everything else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Shape = tuple[int, ...]
Shapes = Sequence[Shape | None]
Attrs = Mapping[str, Any]


@dataclass(frozen=True)
class OpCost:
    """Cost of one node: float MACs, integer MACs (quantized ops) and total float FLOPs."""

    macs: int = 0
    flops: int = 0
    int_macs: int = 0


Formula = Callable[[Shapes, Shapes, Attrs], OpCost]
ZERO = OpCost()


class FormulaError(ValueError):
    """The shapes handed to a formula contradict each other (the counter names the node)."""


def vol(shape: Shape | None) -> int:
    """Number of elements of a static shape (1 for a scalar, 0 when absent)."""
    return 0 if shape is None else math.prod(shape)


def need(shapes: Shapes, index: int, what: str) -> Shape:
    """The shape at ``index``, or a FormulaError saying which operand is missing."""
    if index >= len(shapes) or shapes[index] is None:
        raise FormulaError(f"missing {what} (operand {index})")
    return shapes[index]  # type: ignore[return-value]


def has(shapes: Shapes, index: int) -> bool:
    """Whether optional operand ``index`` is present."""
    return index < len(shapes) and shapes[index] is not None


def broadcast(*shapes: Shape) -> Shape:
    """The numpy broadcast of ``shapes``; FormulaError when they are incompatible."""
    first = shapes[0] if shapes else ()
    if all(s == first for s in shapes):
        return first
    rank = max((len(s) for s in shapes), default=0)
    out = [1] * rank
    for s in shapes:
        for i, d in enumerate(s, start=rank - len(s)):
            if d != out[i] and d != 1 and out[i] != 1:
                raise FormulaError(f"shapes {[list(x) for x in shapes]} do not broadcast")
            out[i] = d if out[i] == 1 else out[i]
    return tuple(out)


def _named(fn: Formula, name: str, doc: str) -> Formula:
    """Give a factory-made formula a readable name and its one-line formula docstring."""
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


def unary_elementwise(per_elem: int = 1) -> Formula:
    """Factory: ``per_elem`` FLOPs per output element of a one-input op."""

    def fn(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
        return OpCost(flops=per_elem * vol(need(outs, 0, "output")))

    return _named(fn, "unary_elementwise", f"FLOPs = {per_elem} × out_vol")


def binary_elementwise(per_elem: int = 1) -> Formula:
    """Factory: ``per_elem`` FLOPs per element of the broadcast of all (variadic) inputs."""

    def fn(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
        shapes = [s for s in ins if s is not None]
        if not shapes:
            raise FormulaError("elementwise op without inputs")
        return OpCost(flops=per_elem * vol(broadcast(*shapes)))

    return _named(fn, "binary_elementwise", f"FLOPs = {per_elem} × vol(broadcast(inputs))")


def prelu(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """FLOPs = vol(X); slope broadcasts to X, or is PRelu-1/-6's per-channel 1-D [C]."""
    x, slope = need(ins, 0, "input X"), need(ins, 1, "slope")
    if not (len(slope) == 1 and len(x) >= 2 and slope[0] == x[1]):
        try:
            fits = broadcast(x, slope) == x
        except FormulaError:
            fits = False
        if not fits:
            raise FormulaError(f"slope {list(slope)} does not broadcast to X {list(x)}")
    return OpCost(flops=vol(x))


def per_output_element(per_elem: int, name: str) -> Formula:
    """Factory: a fixed count per output element (Softmax 4, BatchNorm 2, ...)."""

    def fn(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
        return OpCost(flops=per_elem * vol(need(outs, 0, "output")))

    return _named(fn, name, f"FLOPs = {per_elem} × out_vol")


def reduction(mean: bool) -> Formula:
    """Factory: one FLOP per input element, plus one division per output element for means."""

    def fn(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
        extra = vol(need(outs, 0, "output")) if mean else 0
        return OpCost(flops=vol(need(ins, 0, "input")) + extra)

    doc = "FLOPs = in_vol + out_vol" if mean else "FLOPs = in_vol"
    return _named(fn, "reduction_mean" if mean else "reduction", doc)


def data_movement(*op_types: str) -> frozenset[str]:
    """Factory: op types that move or describe data: 0 FLOPs, but their bytes still count."""
    return frozenset(op_types)
