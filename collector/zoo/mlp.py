"""``mlp``: a dense multi-layer perceptron, the zoo's best case for FLOP efficiency.

Four Gemm layers at batch 64 use every weight 64 times: high arithmetic intensity (about
30 FLOP/byte), so the GEMM kernels run near the core's peak and FLOPs predict latency well.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx

from collector.zoo._builder import GraphBuilder

NAME = "mlp"
DESCRIPTION = (
    "Dense MLP, batch 64: Gemm 512->768->768->768->256 with Relu. High arithmetic "
    "intensity; stresses GEMM throughput and should run near the core's peak GFLOP/s."
)
BATCH = 64
WIDTHS = (512, 768, 768, 768, 256)


def build(rng: np.random.Generator) -> onnx.ModelProto:
    """Input ``features`` [64, 512] float32, output ``logits`` [64, 256]."""
    b = GraphBuilder(rng)
    x = "features"
    layers = list(itertools.pairwise(WIDTHS))
    for index, (d_in, d_out) in enumerate(layers):
        w = b.weight("w", (d_in, d_out), fan_in=d_in)
        last = index == len(layers) - 1
        x = b.op("Gemm", [x, w, b.bias("b", d_out)], out="logits" if last else None)
        if not last:
            x = b.op("Relu", [x])
    return b.finish(
        NAME, DESCRIPTION, {"features": (BATCH, WIDTHS[0])}, {"logits": (BATCH, WIDTHS[-1])}
    )
