"""Builders of the dense families: Gemm, MatMul, attention, LayerNorm."""

from __future__ import annotations

import math

from collector.sweep.record import KernelSample
from collector.sweep.record import as_int as _i
from collector.zoo._builder import GraphBuilder, layer_norm


def gemm(b: GraphBuilder, s: KernelSample) -> list[str]:
    """Gemm(A, B, bias) with B a weight, [N, K] with transB=1 or [K, N]."""
    p = s.params
    k, n, trans = _i(p, "k"), _i(p, "n"), _i(p, "trans_b")
    w = b.weight("w", (n, k) if trans else (k, n), fan_in=k)
    return [b.op("Gemm", ["a", w, b.bias("bias", n)], transB=trans)]


def matmul(b: GraphBuilder, s: KernelSample) -> list[str]:
    """MatMul(a, b) with b a second input, or a [K, N] weight broadcast over the batch."""
    p = s.params
    rhs = "b" if p["rhs"] == "input" else b.weight("w", (_i(p, "k"), _i(p, "n")), fan_in=_i(p, "k"))
    return [b.op("MatMul", ["a", rhs])]


def attention(b: GraphBuilder, s: KernelSample) -> list[str]:
    """softmax(Q . K^T / sqrt(d)) . V, with K transposed by its own node, as exporters write it."""
    kt = b.op("Transpose", ["k"], perm=[0, 1, 3, 2])
    scores = b.op("MatMul", ["q", kt])
    scaled = b.op("Mul", [scores, b.scalar(1.0 / math.sqrt(_i(s.params, "head_dim")))])
    probs = b.op("Softmax", [scaled], axis=-1)
    return [b.op("MatMul", [probs, "v"])]


def layernorm(b: GraphBuilder, s: KernelSample) -> list[str]:
    """LayerNormalization over the last axis (opset 17)."""
    return [layer_norm(b, "x", _i(s.params, "dim"))]


BUILDERS = {"gemm": gemm, "matmul": matmul, "attention": attention, "layernorm": layernorm}
