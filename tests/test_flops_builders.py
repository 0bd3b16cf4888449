"""Builders of small ONNX graphs for the FLOPs tests (imported by tests/test_flops_*.py).

Each builder returns a ModelProto that onnxruntime can run, so a hand-computed count is
always checked against a graph that is valid, not merely one that onnx accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

F = TensorProto.FLOAT
OPSET = 17


def vi(name: str, dims: Sequence[int | str] | None, elem: int = F) -> onnx.ValueInfoProto:
    """A tensor value info."""
    return helper.make_tensor_value_info(name, elem, dims)


def init(
    name: str, shape: Sequence[int], dtype: type = np.float32, value: float = 0.1
) -> onnx.TensorProto:
    """A constant initializer filled with ``value``."""
    return onnx.numpy_helper.from_array(np.full(shape, value, dtype=dtype), name)


def ints(name: str, values: Sequence[int]) -> onnx.TensorProto:
    """An int64 initializer."""
    return onnx.numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    inits: Sequence[onnx.TensorProto] = (),
    opset: int = OPSET,
    extra_opsets: Sequence[tuple[str, int]] = (),
) -> onnx.ModelProto:
    """A checked model with one default-domain opset (plus ``extra_opsets``)."""
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(graph, opset_imports=opsets)
    m.ir_version = min(m.ir_version, 10)
    return m


def single(
    op: str,
    in_shapes: Sequence[Sequence[int]],
    out_shape: Sequence[int] | None,
    inits: Sequence[onnx.TensorProto] = (),
    opset: int = OPSET,
    **attrs: Any,
) -> onnx.ModelProto:
    """One node fed by graph inputs x0, x1, ... and then the given initializers."""
    names = [f"x{i}" for i in range(len(in_shapes))] + [t.name for t in inits]
    node = helper.make_node(op, names, ["y"], name=f"the_{op.lower()}", **attrs)
    inputs = [vi(f"x{i}", s) for i, s in enumerate(in_shapes)]
    return model([node], inputs, [vi("y", out_shape)], inits, opset)


def run(m: onnx.ModelProto, feeds: dict[str, np.ndarray] | None = None) -> list[np.ndarray]:
    """Run ``m`` in onnxruntime on random feeds, proving the graph is valid."""
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    if feeds is None:
        feeds = {}
        for i in session.get_inputs():
            shape = [d if isinstance(d, int) else 1 for d in i.shape]
            dtype = np.float32 if "float" in i.type else np.int64
            feeds[i.name] = rng.standard_normal(shape).astype(dtype)
    return session.run(None, feeds)


class _Encoder:
    """Appends nodes and initializers for one encoder layer at a time."""

    def __init__(self, d: int, heads: int) -> None:
        self.d, self.heads, self.prefix = d, heads, ""
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = [
            ints("zero", [0]),
            ints("neg1", [-1]),
            ints("hd", [heads, d // heads]),
            init("half", [], value=0.5),
            init("one", [], value=1.0),
            init("sqrt2", [], value=1.4142135),
            init("eps", [], value=1e-5),
            init("two", [], value=2.0),
            init("scale", [], value=float(np.sqrt(d // heads))),
        ]

    def add(self, op: str, ins: list[str], **attrs: Any) -> str:
        """Append one node and return its output name."""
        out = f"{self.prefix}{op}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def linear(self, src: str, n_in: int, n_out: int, tag: str) -> str:
        """MatMul + bias Add, as torch exports nn.Linear on 3-D input."""
        self.inits.append(init(f"{self.prefix}{tag}_w", [n_in, n_out]))
        self.inits.append(init(f"{self.prefix}{tag}_b", [n_out]))
        return self.add(
            "Add", [self.add("MatMul", [src, f"{self.prefix}{tag}_w"]), f"{self.prefix}{tag}_b"]
        )

    def heads_view(self, src: str) -> str:
        """[B, S, d] -> [B, heads, S, d/heads] through a Shape -> Slice -> Concat chain."""
        lead = self.add("Slice", [self.add("Shape", [src]), "zero", "neg1"])
        target = self.add("Concat", [lead, "hd"], axis=0)
        return self.add("Transpose", [self.add("Reshape", [src, target])], perm=[0, 2, 1, 3])

    def layer_norm(self, src: str, tag: str) -> str:
        """LayerNorm decomposed into ReduceMean/Sub/Pow/Add/Sqrt/Div/Mul/Add."""
        add = self.add
        cen = add("Sub", [src, add("ReduceMean", [src], axes=[-1])])
        var = add("ReduceMean", [add("Pow", [cen, "two"])], axes=[-1])
        std = add("Sqrt", [add("Add", [var, "eps"])])
        self.inits.append(init(f"{self.prefix}{tag}_g", [self.d]))
        self.inits.append(init(f"{self.prefix}{tag}_beta", [self.d]))
        scaled = add("Mul", [add("Div", [cen, std]), f"{self.prefix}{tag}_g"])
        return add("Add", [scaled, f"{self.prefix}{tag}_beta"])

    def layer(self, x: str, ffn: int) -> str:
        """One post-norm encoder layer with exact-erf GELU."""
        add, d = self.add, self.d
        q, k, v = (self.heads_view(self.linear(x, d, d, t)) for t in "qkv")
        kt = add("Transpose", [k], perm=[0, 1, 3, 2])
        probs = add("Softmax", [add("Div", [add("MatMul", [q, kt]), "scale"])], axis=-1)
        ctx = add("Transpose", [add("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        merged = add("Reshape", [ctx, add("Shape", [x])])
        h = self.layer_norm(add("Add", [x, self.linear(merged, d, d, "o")]), "ln1")
        up = self.linear(h, d, ffn, "up")
        erf = add("Add", [add("Erf", [add("Div", [up, "sqrt2"])]), "one"])
        gelu = add("Mul", [add("Mul", [up, erf]), "half"])
        return self.layer_norm(add("Add", [h, self.linear(gelu, ffn, d, "down")]), "ln2")


def encoder(layers: int, d: int, heads: int, seq: int, ffn: int) -> onnx.ModelProto:
    """A BERT-style post-norm encoder, exported the way torch does (shape chains, LN, GELU)."""
    enc = _Encoder(d, heads)
    x = "x"
    for i in range(layers):
        enc.prefix = f"l{i}_"
        x = enc.layer(x, ffn)
    enc.nodes.append(helper.make_node("Identity", [x], ["y"], name="out"))
    return model(enc.nodes, [vi("x", [1, seq, d])], [vi("y", [1, seq, d])], enc.inits)
