"""Builders of the families the first sweep lacked: LRN, SkipLayerNorm, large FC, Softmax over
any axis, depthwise and grouped Conv blocks.

Each writes the pattern exporters write, so ORT fuses it as it would in a whole model: the
bias Add before the residual Add (SkipLayerNormalization), Gemm or MatMul+Add then Relu
(FusedGemm), bias-free Conv + BatchNormalization + activation (one fused Conv).
"""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from collector.sweep.families_spatial import ACTIVATIONS
from collector.sweep.record import KernelSample
from collector.sweep.record import as_int as _i
from collector.zoo._builder import GraphBuilder, conv_bn, layer_norm

LRN_ALPHA, LRN_BETA = 1e-4, 0.75  # AlexNet's and GoogLeNet's
FC_WEIGHT_VALUE = 1e-3  # small, so Relu(A.W + b) stays finite for any K


def lrn(b: GraphBuilder, s: KernelSample) -> list[str]:
    """LRN over ``window`` neighbouring channels."""
    p = s.params
    bias = float(_i(p, "bias"))
    return [b.op("LRN", ["x"], size=_i(p, "window"), alpha=LRN_ALPHA, beta=LRN_BETA, bias=bias)]


def skip_layernorm(b: GraphBuilder, s: KernelSample) -> list[str]:
    """[x + bias] + residual, then LayerNormalization: ORT fuses only this order of the Adds."""
    p = s.params
    dim = _i(p, "dim")
    x = b.op("Add", ["x", b.bias("bias", dim)]) if _i(p, "bias") else "x"
    return [layer_norm(b, b.op("Add", [x, "residual"]), dim)]


def _materialized(b: GraphBuilder, shape: tuple[int, int]) -> str:
    """A weight ConstantOfShape makes at load time: a small file, a real 16..128 MB tensor."""
    value = numpy_helper.from_array(np.array([FC_WEIGHT_VALUE], np.float32))
    dims = b.const("w_shape", np.array(shape, np.int64))
    return b.op("ConstantOfShape", [dims], value=value)


def fc_large(b: GraphBuilder, s: KernelSample) -> list[str]:
    """Gemm(A, W, bias) or MatMul(A, W) + bias, then Relu if asked (ORT: FusedGemm)."""
    p = s.params
    k, n, trans = _i(p, "k"), _i(p, "n"), _i(p, "trans_b")
    w = _materialized(b, (n, k) if trans else (k, n))
    bias = b.bias("bias", n)
    if p["form"] == "gemm":
        y = b.op("Gemm", ["a", w, bias], transB=trans)
    else:
        y = b.op("Add", [b.op("MatMul", ["a", w]), bias])
    return [b.op("Relu", [y]) if _i(p, "relu") else y]


def softmax_axis(b: GraphBuilder, s: KernelSample) -> list[str]:
    """Softmax (opset 13 semantics: over one axis) at ``axis``."""
    return [b.op("Softmax", ["x"], axis=_i(s.params, "axis"))]


def depthwise(b: GraphBuilder, s: KernelSample) -> list[str]:
    """Depthwise Conv (same padding) + BatchNormalization + activation, as MobileNets export."""
    p = s.params
    c = _i(p, "c")
    y = conv_bn(b, "x", c, c, kernel=_i(p, "k"), stride=_i(p, "stride"), group=c)
    act = str(p["act"])
    return [y if act == "none" else ACTIVATIONS[act](b, y)]


def grouped(b: GraphBuilder, s: KernelSample) -> list[str]:
    """Grouped Conv (same padding) + BatchNormalization + Relu, as ShuffleNet and ResNeXt."""
    p = s.params
    y = conv_bn(
        b,
        "x",
        _i(p, "cin"),
        _i(p, "cout"),
        kernel=_i(p, "k"),
        stride=_i(p, "stride"),
        group=_i(p, "groups"),
    )
    return [b.op("Relu", [y])]


BUILDERS = {
    "lrn": lrn,
    "skip_layernorm": skip_layernorm,
    "fc_large": fc_large,
    "softmax_axis": softmax_axis,
    "depthwise": depthwise,
    "grouped": grouped,
}
