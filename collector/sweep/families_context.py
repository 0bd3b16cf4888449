"""Builders of the context families: large Conv, chains of blocks, data movement.

A chain's blocks keep the shape, so one input size serves every length; the inverted block is
MobileNetV2's without its expansion (1x1 + Relu, depthwise 3x3 + Relu, 1x1, residual Add), and
the elementwise block is a per-channel Mul, Add and Relu that no optimizer folds into a Conv.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from collector.sweep.record import KernelSample
from collector.sweep.record import as_int as _i
from collector.sweep.space_context import shuffle_shape
from collector.zoo._builder import GraphBuilder


def _conv(b: GraphBuilder, x: str, c_in: int, c_out: int, k: int, group: int = 1) -> str:
    w = b.weight("w", (c_out, c_in // group, k, k), fan_in=c_in // group * k * k)
    pad = k // 2
    return b.op("Conv", [x, w, b.bias("b", c_out)], kernel_shape=[k, k], pads=[pad] * 4,
                group=group)  # fmt: skip


def conv_large(b: GraphBuilder, s: KernelSample) -> list[str]:
    """Conv (same padding, stride 1) with bias, then Relu: ORT's FusedConv, as in VGG."""
    p = s.params
    return [b.op("Relu", [_conv(b, "x", _i(p, "cin"), _i(p, "cout"), _i(p, "k"))])]


def _relu(b: GraphBuilder, x: str) -> str:
    return b.op("Relu", [x])


def _inverted(b: GraphBuilder, x: str, c: int) -> str:
    y = _relu(b, _conv(b, x, c, c, 1))
    y = _relu(b, _conv(b, y, c, c, 3, group=c))
    return b.op("Add", [_conv(b, y, c, c, 1), x])


def _eltwise(b: GraphBuilder, x: str, c: int) -> str:
    scale = b.const("scale", (1.0 + 0.01 * b.rng.standard_normal((1, c, 1, 1))).astype(np.float32))
    shift = b.const("shift", (0.01 * b.rng.standard_normal((1, c, 1, 1))).astype(np.float32))
    return _relu(b, b.op("Add", [b.op("Mul", [x, scale]), shift]))


_BLOCKS: dict[str, Callable[[GraphBuilder, str, int], str]] = {
    "pointwise": lambda b, x, c: _relu(b, _conv(b, x, c, c, 1)),
    "conv3": lambda b, x, c: _relu(b, _conv(b, x, c, c, 3)),
    "depthwise": lambda b, x, c: _relu(b, _conv(b, x, c, c, 3, group=c)),
    "inverted": _inverted,
    "eltwise": _eltwise,
}


def chain(b: GraphBuilder, s: KernelSample) -> list[str]:
    """``length`` blocks of one kind, each feeding the next."""
    p = s.params
    block, c, y = _BLOCKS[str(p["kind"])], _i(p, "c"), "x"
    for _ in range(_i(p, "length")):
        y = block(b, y, c)
    return [y]


def shuffle(b: GraphBuilder, s: KernelSample) -> list[str]:
    """The data movement whole models do between their compute kernels."""
    p = s.params
    kind = str(p["kind"])
    if kind == "sum":
        return [b.op("Sum", [f"x{i}" for i in range(_i(p, "n"))])]
    if kind == "flatten":
        return [b.op("Flatten", ["x"], axis=1)]
    if kind == "squeeze":
        return [b.op("Squeeze", ["x", b.const("axes", np.array([2, 3], np.int64))])]
    if kind == "nhwc":
        return [b.op("Transpose", ["x"], perm=[0, 2, 3, 1])]
    if kind == "heads":
        return [b.op("Transpose", ["x"], perm=[0, 2, 1, 3])]
    _, c, h, w = shuffle_shape(p)
    g = _i(p, "groups")
    split = b.const("shape", np.array([1, g, c // g, h, w], np.int64))
    y = b.op("Transpose", [b.op("Reshape", ["x", split])], perm=[0, 2, 1, 3, 4])
    return [b.op("Reshape", [y, b.const("shape", np.array([1, c, h, w], np.int64))])]


def _channel(b: GraphBuilder, prefix: str, c: int, lo: float, hi: float) -> str:
    return b.const(prefix, b.rng.uniform(lo, hi, (1, c, 1, 1)).astype(np.float32))


def elementwise(b: GraphBuilder, s: KernelSample) -> list[str]:
    """One elementwise op on NCHW: a binary op with a same-shape input, a per-channel weight or
    a scalar; a unary op; or a BatchNormalization with no Conv before it to fold into."""
    p = s.params
    op, c = str(p["op"]), _i(p, "c")
    if op == "BatchNormalization":
        vectors = [b.const(n, b.rng.uniform(0.5, 1.5, c).astype(np.float32))
                   for n in ("scale", "bias", "mean", "var")]  # fmt: skip
        return [b.op("BatchNormalization", ["x", *vectors])]
    if op == "Clip":
        return [b.op("Clip", ["x", b.scalar(0.0), b.scalar(6.0)])]
    if op == "HardSigmoid":
        return [b.op("HardSigmoid", ["x"], alpha=1.0 / 6, beta=0.5)]
    if op == "LeakyRelu":
        return [b.op("LeakyRelu", ["x"], alpha=0.1)]
    broadcast = p.get("broadcast")
    if broadcast is None:
        return [b.op(op, ["x"])]
    other = {"none": lambda: "y", "channel": lambda: _channel(b, "w", c, 0.5, 1.5),
             "scalar": lambda: b.scalar(2.0)}[str(broadcast)]()  # fmt: skip
    return [b.op(op, ["x", other])]


BUILDERS = {
    "conv_large": conv_large,
    "chain": chain,
    "shuffle": shuffle,
    "elementwise": elementwise,
}
