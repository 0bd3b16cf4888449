"""``transformer``: one pre-norm transformer encoder block, GEMMs mixed with memory-bound glue.

Its MatMuls are dense, but LayerNormalization, Softmax, the head Reshape/Transpose and the Erf
GELU are element-wise passes with no FLOPs worth counting and real memory traffic, so its
efficiency sits between the MLP and the depthwise net.
"""

from __future__ import annotations

import math

import numpy as np
import onnx

from collector.zoo._builder import GraphBuilder, layer_norm, linear

NAME = "transformer"
DESCRIPTION = (
    "One pre-norm transformer encoder block, sequence 128, d_model 256, 4 heads, MLP 1024: "
    "LayerNormalization, Q/K/V MatMuls, Reshape/Transpose into heads, scaled dot-product "
    "Softmax attention, output projection, residual Adds and an Erf GELU MLP. Stresses the mix of "
    "GEMMs with element-wise and data-movement ops."
)
SEQ, DIM, HEADS, FFN = 128, 256, 4, 1024


def attention(b: GraphBuilder, x: str) -> str:
    """Multi-head self-attention over [1, SEQ, DIM] with Softmax(Q K^T / sqrt(d_head)) V."""
    d_head = DIM // HEADS
    split = b.const("heads_shape", np.array([1, SEQ, HEADS, d_head], np.int64))
    q, k, v = (b.op("Reshape", [linear(b, x, DIM, DIM), split]) for _ in range(3))
    q = b.op("Transpose", [q], perm=[0, 2, 1, 3])  # [1, H, S, d]
    k = b.op("Transpose", [k], perm=[0, 2, 3, 1])  # [1, H, d, S]
    v = b.op("Transpose", [v], perm=[0, 2, 1, 3])
    scores = b.op("Mul", [b.op("MatMul", [q, k]), b.scalar(1.0 / math.sqrt(d_head))])
    context = b.op("MatMul", [b.op("Softmax", [scores], axis=-1), v])
    merged = b.op("Transpose", [context], perm=[0, 2, 1, 3])
    merged = b.op("Reshape", [merged, b.const("model_shape", np.array([1, SEQ, DIM], np.int64))])
    return linear(b, merged, DIM, DIM)


def gelu(b: GraphBuilder, x: str) -> str:
    """Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), as opset 17 has no Gelu op."""
    erf = b.op("Erf", [b.op("Mul", [x, b.scalar(1.0 / math.sqrt(2.0))])])
    return b.op("Mul", [b.op("Mul", [x, b.scalar(0.5)]), b.op("Add", [erf, b.scalar(1.0)])])


def build(rng: np.random.Generator) -> onnx.ModelProto:
    """Input ``tokens`` [1, 128, 256] float32 (embeddings), output ``hidden`` [1, 128, 256]."""
    b = GraphBuilder(rng)
    x = b.op("Add", ["tokens", attention(b, layer_norm(b, "tokens", DIM))])
    hidden = gelu(b, linear(b, layer_norm(b, x, DIM), DIM, FFN))
    b.op("Add", [x, linear(b, hidden, FFN, DIM)], out="hidden")
    shape = (1, SEQ, DIM)
    return b.finish(NAME, DESCRIPTION, {"tokens": shape}, {"hidden": shape})
