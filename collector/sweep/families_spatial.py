"""Builders of the spatial families: Conv, Conv+BN+activation, ConvTranspose, pooling."""

from __future__ import annotations

from collections.abc import Callable

from collector.sweep.record import KernelSample
from collector.sweep.record import as_int as _i
from collector.sweep.space_spatial import conv_pad, convt_geometry
from collector.zoo._builder import GraphBuilder, batch_norm, relu6


def _conv(b: GraphBuilder, s: KernelSample, with_bias: bool) -> str:
    p = s.params
    k, cin, cout, groups = _i(p, "k"), _i(p, "cin"), _i(p, "cout"), _i(p, "groups")
    inputs = ["x", b.weight("w", (cout, cin // groups, k, k), fan_in=cin // groups * k * k)]
    if with_bias:
        inputs.append(b.bias("b", cout))
    return b.op(
        "Conv",
        inputs,
        kernel_shape=[k, k],
        strides=[_i(p, "stride")] * 2,
        dilations=[_i(p, "dilation")] * 2,
        pads=[conv_pad(p)] * 4,
        group=groups,
    )


def conv(b: GraphBuilder, s: KernelSample) -> list[str]:
    """Conv with bias, as a PyTorch export without BN gives it."""
    return [_conv(b, s, with_bias=True)]


def _silu(b: GraphBuilder, x: str) -> str:
    return b.op("Mul", [x, b.op("Sigmoid", [x])])


ACTIVATIONS: dict[str, Callable[[GraphBuilder, str], str]] = {
    "relu": lambda b, x: b.op("Relu", [x]),
    "relu6": relu6,
    "hardswish": lambda b, x: b.op("HardSwish", [x]),
    "silu": _silu,
}


def conv_bn_act(b: GraphBuilder, s: KernelSample) -> list[str]:
    """Bias-free Conv, BatchNormalization and an activation (ORT folds BN, fuses the act)."""
    y = batch_norm(b, _conv(b, s, with_bias=False), _i(s.params, "cout"))
    return [ACTIVATIONS[str(s.params["act"])](b, y)]


def conv_transpose(b: GraphBuilder, s: KernelSample) -> list[str]:
    """ConvTranspose with bias; weights are [cin, cout, k, k]."""
    p = s.params
    k, cin, cout = _i(p, "k"), _i(p, "cin"), _i(p, "cout")
    pad, extra, _ = convt_geometry(p)
    w = b.weight("w", (cin, cout, k, k), fan_in=cin * k * k)
    y = b.op(
        "ConvTranspose",
        ["x", w, b.bias("b", cout)],
        kernel_shape=[k, k],
        strides=[_i(p, "stride")] * 2,
        pads=[pad] * 4,
        output_padding=[extra] * 2,
    )
    return [y]


def pool(b: GraphBuilder, s: KernelSample) -> list[str]:
    """MaxPool or AveragePool without padding, or GlobalAveragePool."""
    p = s.params
    if p["kind"] == "global":
        return [b.op("GlobalAveragePool", ["x"])]
    op = "MaxPool" if p["kind"] == "max" else "AveragePool"
    return [b.op(op, ["x"], kernel_shape=[_i(p, "k")] * 2, strides=[_i(p, "stride")] * 2)]


BUILDERS = {
    "conv": conv,
    "conv_bn_act": conv_bn_act,
    "conv_transpose": conv_transpose,
    "pool": pool,
}
