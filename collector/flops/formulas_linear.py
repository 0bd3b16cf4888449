"""MAC-bearing formulas: Conv, ConvTranspose, Gemm, MatMul, Einsum and their quantized twins.

These are the only ops whose work is counted in MACs (``docs/FLOPS.md``); FLOPs = 2 x MACs,
plus one FLOP per output element for a bias. Quantized ops count the same MACs as integer
MACs (``int_macs``) and no float FLOPs, so int8 work never inflates the float figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from collector.flops.formulas import (
    Attrs,
    FormulaError,
    OpCost,
    Shape,
    Shapes,
    broadcast,
    has,
    need,
    vol,
)


def conv_out_spatial(
    in_spatial: Sequence[int], kernel: Sequence[int], attrs: Attrs
) -> tuple[int, ...]:
    """Conv output spatial dims for strides, dilations, pads and every ``auto_pad`` mode."""
    nd = len(in_spatial)
    strides = attrs.get("strides") or [1] * nd
    dilations = attrs.get("dilations") or [1] * nd
    pads = attrs.get("pads") or [0] * (2 * nd)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if len(kernel) != nd:
        raise FormulaError(f"kernel {list(kernel)} does not fit {nd} spatial dims")
    out = []
    for i, (size, k) in enumerate(zip(in_spatial, kernel, strict=True)):
        span = (k - 1) * dilations[i] + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-size // strides[i]))
        elif auto_pad == "VALID":
            out.append((size - span) // strides[i] + 1)
        else:
            out.append((size + pads[i] + pads[i + nd] - span) // strides[i] + 1)
    return tuple(out)


def _conv_macs(x: Shape, w: Shape, y: Shape, attrs: Attrs) -> int:
    """MACs of a (grouped) convolution after checking that X, W and Y agree."""
    group = int(attrs.get("group", 1))
    if not len(x) == len(w) == len(y) or len(x) < 3:
        raise FormulaError(f"ranks differ: X {list(x)}, W {list(w)}, Y {list(y)}")
    if x[1] != w[1] * group or w[0] % group:
        raise FormulaError(
            f"X has {x[1]} channels but W {list(w)} with group={group} expects {w[1] * group}"
        )
    if y[1] != w[0] or y[0] != x[0]:
        raise FormulaError(f"Y {list(y)} does not match X {list(x)} and W {list(w)}")
    kernel = attrs.get("kernel_shape") or w[2:]
    expected = conv_out_spatial(x[2:], kernel, attrs)
    if tuple(y[2:]) != expected:
        raise FormulaError(f"Y spatial dims {list(y[2:])} contradict the expected {list(expected)}")
    return vol(y) * vol(w[1:])


def conv(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """MACs = N·C_out·∏out_spatial·(C_in/group)·∏kernel; FLOPs = 2·MACs (+ out_vol for bias)."""
    y = need(outs, 0, "output Y")
    macs = _conv_macs(need(ins, 0, "input X"), need(ins, 1, "weight W"), y, attrs)
    return OpCost(macs=macs, flops=2 * macs + (vol(y) if has(ins, 2) else 0))


def conv_transpose(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """MACs = N·C_in·∏in_spatial·(C_out/group)·∏kernel; FLOPs = 2·MACs (+ out_vol for bias)."""
    x, w, y = need(ins, 0, "input X"), need(ins, 1, "weight W"), need(outs, 0, "output Y")
    group = int(attrs.get("group", 1))
    if len(x) != len(w) or x[1] != w[0] or y[1] != w[1] * group:
        raise FormulaError(f"X {list(x)}, W {list(w)}, group={group}, Y {list(y)} disagree")
    macs = vol(x) * vol(w[1:])
    return OpCost(macs=macs, flops=2 * macs + (vol(y) if has(ins, 2) else 0))


def gemm(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """MACs = M·N·K; FLOPs = 2·MACs (+ M·N for the C term)."""
    a, b = need(ins, 0, "A"), need(ins, 1, "B")
    if len(a) != 2 or len(b) != 2:
        raise FormulaError(f"Gemm needs 2-D A and B, got {list(a)} and {list(b)}")
    m, k = (a[1], a[0]) if attrs.get("transA", 0) else a
    kb, n = (b[1], b[0]) if attrs.get("transB", 0) else b
    if k != kb:
        raise FormulaError(f"inner dimensions differ: A gives K={k}, B gives K={kb}")
    macs = m * n * k
    return OpCost(macs=macs, flops=2 * macs + (m * n if has(ins, 2) else 0))


def matmul_macs(a: Shape, b: Shape) -> int:
    """∏(broadcast batch dims)·M·N·K with numpy's promotion of 1-D operands."""
    if not a or not b:
        raise FormulaError("MatMul operands must have rank >= 1")
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise FormulaError(f"inner dimensions differ: A {list(a)} vs B {list(b)}")
    return vol(broadcast(a2[:-2], b2[:-2])) * a2[-2] * b2[-1] * a2[-1]


def matmul(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """MACs = ∏(broadcast batch dims)·M·N·K (1-D operands promoted as in numpy); FLOPs = 2·MACs."""
    macs = matmul_macs(need(ins, 0, "A"), need(ins, 1, "B"))
    return OpCost(macs=macs, flops=2 * macs)


def _batch_first_moved(shape: Shape) -> Shape:
    """transBatch: dim 0 moves just before the last dim, (d0, d1, .., dn) -> (d1, .., d0, dn)."""
    return (*shape[1:-1], shape[0], shape[-1]) if len(shape) >= 3 else shape


def fused_matmul(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """com.microsoft FusedMatMul: MatMul MACs after transBatch, then transA/B; FLOPs = 2·MACs."""
    a, b = need(ins, 0, "A"), need(ins, 1, "B")
    if attrs.get("transBatchA", 0):  # checked against onnxruntime 1.32's results
        a = _batch_first_moved(a)
    if attrs.get("transBatchB", 0):
        b = _batch_first_moved(b)
    if attrs.get("transA", 0) and len(a) >= 2:
        a = (*a[:-2], a[-1], a[-2])
    if attrs.get("transB", 0) and len(b) >= 2:
        b = (*b[:-2], b[-1], b[-2])
    macs = matmul_macs(a, b)
    return OpCost(macs=macs, flops=2 * macs)


def einsum_macs(equation: str, shapes: Sequence[Shape]) -> int:
    """Product of all index sizes (ellipsis dims broadcast), the terms of the contraction."""
    lhs = equation.replace(" ", "").split("->")[0].split(",")
    if len(lhs) != len(shapes):
        raise FormulaError(f"equation {equation!r} has {len(lhs)} operands, got {len(shapes)}")
    sizes: dict[str, int] = {}
    ellipses: list[Shape] = []
    for term, shape in zip(lhs, shapes, strict=True):
        head, _, tail = term.partition("...")
        n_ell = len(shape) - len(head) - len(tail)
        if n_ell < 0 or (n_ell and "..." not in term):
            raise FormulaError(f"term {term!r} does not fit shape {list(shape)}")
        ellipses.append(tuple(shape[len(head) : len(head) + n_ell]))
        dims = (*shape[: len(head)], *shape[len(shape) - len(tail) :])
        labelled = zip(head + tail, dims, strict=True)
        for label, dim in labelled:
            old = sizes.setdefault(label, dim)
            if old != dim and 1 not in (old, dim):
                raise FormulaError(f"index {label!r} is {old} in one operand and {dim} in another")
            sizes[label] = max(old, dim)
    return math.prod(sizes.values()) * vol(broadcast(*ellipses))


def einsum(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """MACs = product of all index sizes of the equation; FLOPs = 2·MACs."""
    shapes = [need(ins, i, f"operand {i}") for i in range(len(ins))]
    macs = einsum_macs(str(attrs.get("equation", "")), shapes)
    return OpCost(macs=macs, flops=2 * macs)


def qlinear_conv(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """int_macs = Conv MACs of x (input 0) and w (input 3); no float FLOPs."""
    macs = _conv_macs(need(ins, 0, "x"), need(ins, 3, "w"), need(outs, 0, "y"), attrs)
    return OpCost(int_macs=macs)


def conv_integer(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """int_macs = Conv MACs of x (input 0) and w (input 1); no float FLOPs."""
    macs = _conv_macs(need(ins, 0, "x"), need(ins, 1, "w"), need(outs, 0, "y"), attrs)
    return OpCost(int_macs=macs)


def qlinear_matmul(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """int_macs = MatMul MACs of a (input 0) and b (input 3); no float FLOPs."""
    return OpCost(int_macs=matmul_macs(need(ins, 0, "a"), need(ins, 3, "b")))


def matmul_integer(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """int_macs = MatMul MACs of A (input 0) and B (input 1); no float FLOPs."""
    return OpCost(int_macs=matmul_macs(need(ins, 0, "A"), need(ins, 1, "B")))


def fused_gemm(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """com.microsoft FusedGemm: Gemm count + M·N for the activation."""
    base = gemm(ins, outs, attrs)
    y = vol(need(outs, 0, "output Y"))
    return OpCost(macs=base.macs, flops=base.flops + (y if attrs.get("activation") else 0))


def fused_conv(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """com.microsoft FusedConv: Conv count + out_vol for the activation (+ out_vol for Z)."""
    base = conv(ins, outs, attrs)
    y = vol(need(outs, 0, "output Y"))
    extra = (y if attrs.get("activation") else 0) + (y if has(ins, 3) else 0)
    return OpCost(macs=base.macs, flops=base.flops + extra)


def nchwc_conv(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """NCHWc Conv: MACs = out_vol·∏W[1:] (padded); FLOPs = 2·MACs + out_vol per extra."""
    # ORT pads channels to its block size (8 or 16), so padded MACs count as run; the extras
    # are one op per output element each for a bias, the fused activation and the Sum input.
    x, w, y = need(ins, 0, "input X"), need(ins, 1, "weight W"), need(outs, 0, "output Y")
    if not len(x) == len(w) == len(y) or len(x) < 3 or y[0] != x[0]:
        raise FormulaError(f"ranks differ: X {list(x)}, W {list(w)}, Y {list(y)}")
    kernel = attrs.get("kernel_shape") or w[2:]
    if tuple(y[2:]) != conv_out_spatial(x[2:], kernel, attrs):
        raise FormulaError(f"Y spatial dims {list(y[2:])} do not follow from X {list(x)}")
    macs = vol(y) * vol(w[1:])
    extra = sum(vol(y) for on in (has(ins, 2), bool(attrs.get("activation")), has(ins, 3)) if on)
    return OpCost(macs=macs, flops=2 * macs + extra)
