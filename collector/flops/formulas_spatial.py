"""Per-element formulas that depend on attributes: normalizations, pools and Resize.

Counts follow ``docs/FLOPS.md``: a normalization costs 5 FLOPs per element with an affine
scale/shift and 4 without; LRN costs size + 4 per element; pools cost one FLOP per window
element; Resize costs 0 (nearest), 2^d (linear) or 4^d (cubic) per output element, d being
the number of resized axes.
"""

from __future__ import annotations

import math

from collector.flops.formulas import Attrs, FormulaError, OpCost, Shapes, has, need, vol


def normalization(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """FLOPs = 5 × out_vol with an affine scale or bias input, 4 × out_vol without."""
    affine = has(ins, 1) or has(ins, 2)
    return OpCost(flops=(5 if affine else 4) * vol(need(outs, 0, "output")))


def skip_layer_norm(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """com.microsoft SkipLayerNormalization: FLOPs = (5 + 1 skip add + 1 if bias) × out_vol."""
    per_elem = 6 + (1 if has(ins, 4) else 0)
    return OpCost(flops=per_elem * vol(need(outs, 0, "output")))


def lrn(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """FLOPs = (size + 4) × out_vol: x², size−1 adds of the window, ×α/size, +bias, ^β, ÷."""
    size = attrs.get("size")
    if not isinstance(size, int) or size < 1:
        raise FormulaError(f"LRN needs a positive int size, got {size!r}")
    return OpCost(flops=(size + 4) * vol(need(outs, 0, "output")))


def pool(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """FLOPs = out_vol × ∏kernel_shape."""
    kernel = attrs.get("kernel_shape")
    if not kernel:
        raise FormulaError("pool without kernel_shape")
    return OpCost(flops=vol(need(outs, 0, "output")) * math.prod(kernel))


_RESIZE_BASE = {"nearest": 0, "linear": 2, "bilinear": 2, "trilinear": 2, "cubic": 4}


def resize(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """FLOPs = out_vol × (0 nearest, 2^d linear, 4^d cubic), d = number of resized axes."""
    x, y = need(ins, 0, "input X"), need(outs, 0, "output Y")
    mode = str(attrs.get("mode", "nearest")).lower()
    if mode not in _RESIZE_BASE:
        raise FormulaError(f"unknown Resize mode {mode!r}")
    if len(x) != len(y):
        raise FormulaError(f"X {list(x)} and Y {list(y)} differ in rank")
    base = _RESIZE_BASE[mode]
    if base == 0:
        return OpCost()
    d = sum(1 for a, b in zip(x, y, strict=True) if a != b)
    return OpCost(flops=vol(y) * base**d)
