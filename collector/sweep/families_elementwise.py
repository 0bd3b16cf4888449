"""Builders of the memory-bound families: binary ops, activations, data movement."""

from __future__ import annotations

import math

import numpy as np
from onnx import helper

from collector.sweep.record import KernelSample
from collector.sweep.record import as_int as _i
from collector.zoo._builder import GraphBuilder


def binary(b: GraphBuilder, s: KernelSample) -> list[str]:
    """Add or Mul of x with y (same shape), a [1, C, 1, 1] weight or a scalar."""
    p = s.params
    c = _i(p, "c")
    other = {
        "none": lambda: "y",
        "channel": lambda: b.const("w", b.rng.uniform(0.5, 1.5, (1, c, 1, 1)).astype(np.float32)),
        "scalar": lambda: b.scalar(1.5),
    }[str(p["broadcast"])]()
    return [b.op(str(p["op"]), ["x", other])]


def _gelu(b: GraphBuilder, x: str) -> str:
    """x * 0.5 * (1 + erf(x / sqrt 2)): the pattern PyTorch exports and ORT fuses into Gelu."""
    erf = b.op("Erf", [b.op("Div", [x, b.scalar(math.sqrt(2.0))])])
    return b.op("Mul", [b.op("Mul", [x, b.op("Add", [erf, b.scalar(1.0)])]), b.scalar(0.5)])


def activation(b: GraphBuilder, s: KernelSample) -> list[str]:
    """One activation; Softmax over the last axis, Gelu as its Erf pattern."""
    op = str(s.params["op"])
    if op == "Gelu":
        return [_gelu(b, "x")]
    return [b.op(op, ["x"], axis=-1) if op == "Softmax" else b.op(op, ["x"])]


def movement(b: GraphBuilder, s: KernelSample) -> list[str]:
    """Concat on channels, Split into halves, Reshape to [1, C, H*W], NHWC Transpose, 2x Resize."""
    p = s.params
    op, c, size = str(p["op"]), _i(p, "c"), _i(p, "size")
    if op == "Concat":
        return [b.op("Concat", ["x", "y"], axis=1)]
    if op == "Split":
        half = b.const("split", np.array([c // 2, c - c // 2], np.int64))
        names = [b.name("half"), b.name("half")]
        b.nodes.append(helper.make_node("Split", ["x", half], names, b.name("split"), axis=1))
        return names
    if op == "Reshape":
        return [b.op("Reshape", ["x", b.const("shape", np.array([1, c, size * size], np.int64))])]
    if op == "Transpose":
        return [b.op("Transpose", ["x"], perm=[0, 2, 3, 1])]
    scales = b.const("scales", np.array([1, 1, 2, 2], np.float32))
    return [b.op("Resize", ["x", "", scales], mode=str(p["mode"]))]


BUILDERS = {"binary": binary, "activation": activation, "movement": movement}
