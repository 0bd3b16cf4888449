"""``dwsep``: MobileNetV2-style depthwise-separable blocks, few FLOPs but bound by memory.

A depthwise 3x3 convolution does 9 multiply-adds per element it reads (about 2 FLOP/byte), and
narrow 1x1 convolutions are not much better, so this net has few FLOPs yet a latency set by
memory traffic: its GFLOP/s is far below the MLP's, which is where FLOP counts mislead. Channel
widths follow the first stages of MobileNetV2 at width 0.35 (stem 16, then 8, 8, 16) at 224x224.
"""

from __future__ import annotations

import numpy as np
import onnx

from collector.zoo._builder import GraphBuilder, conv_bn, relu6

NAME = "dwsep"
DESCRIPTION = (
    "Depthwise-separable net (MobileNetV2 inverted residuals, width 0.35) on 1x3x224x224: "
    "stride-2 stem, then blocks of 1x1 expand Conv, depthwise 3x3 Conv (group=C), "
    "BatchNormalization, Relu6 (Clip) and 1x1 project Conv, with residual Adds, "
    "GlobalAveragePool and a Gemm classifier. Few FLOPs, memory bound: low GFLOP/s."
)
SIZE = 224
STEM = 16
# (expansion, output channels, stride) per block, as in MobileNetV2's table 2.
BLOCKS = ((1, 8, 1), (6, 8, 2), (6, 8, 1), (6, 16, 2), (6, 16, 1), (6, 16, 1))
CLASSES = 10


def inverted_residual(b: GraphBuilder, x: str, c_in: int, block: tuple[int, int, int]) -> str:
    """Expand 1x1 + Relu6, depthwise 3x3 + Relu6, linear 1x1 project, Add when shapes match."""
    expansion, c_out, stride = block
    hidden = c_in * expansion
    y = relu6(b, conv_bn(b, x, c_in, hidden, kernel=1)) if expansion > 1 else x
    y = relu6(b, conv_bn(b, y, hidden, hidden, kernel=3, stride=stride, group=hidden))
    y = conv_bn(b, y, hidden, c_out, kernel=1)
    return b.op("Add", [x, y]) if stride == 1 and c_in == c_out else y


def build(rng: np.random.Generator) -> onnx.ModelProto:
    """Input ``image`` [1, 3, 224, 224] float32, output ``logits`` [1, 10]."""
    b = GraphBuilder(rng)
    x = relu6(b, conv_bn(b, "image", 3, STEM, kernel=3, stride=2))
    channels = STEM
    for block in BLOCKS:
        x = inverted_residual(b, x, channels, block)
        channels = block[1]
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])])
    w = b.weight("fc_w", (channels, CLASSES), fan_in=channels)
    b.op("Gemm", [x, w, b.bias("fc_b", CLASSES)], out="logits")
    return b.finish(NAME, DESCRIPTION, {"image": (1, 3, SIZE, SIZE)}, {"logits": (1, CLASSES)})
