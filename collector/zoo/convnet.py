"""``convnet``: a plain VGG-style 3x3 convolution net, dense convolutions at moderate intensity.

Dense 3x3 convolutions reuse each weight over the whole feature map, so they are compute bound
(about 70 FLOP/byte): on a wide-SIMD core they run about as efficiently as the MLP's GEMMs, while
small cores lose some of it to im2col and the narrow first layer (3 input channels).
"""

from __future__ import annotations

import numpy as np
import onnx

from collector.zoo._builder import GraphBuilder, conv_bn

NAME = "convnet"
DESCRIPTION = (
    "Plain 3x3 conv net on 1x3x64x64: two stages of Conv+BatchNormalization+Relu (32 and 64 "
    "channels) with MaxPool, GlobalAveragePool and a Gemm classifier. Dense convolutions; "
    "compute bound."
)
SIZE = 64
STAGES = ((32, 32), (64, 64))  # output channels of the convolutions in each stage
CLASSES = 10


def build(rng: np.random.Generator) -> onnx.ModelProto:
    """Input ``image`` [1, 3, 64, 64] float32, output ``logits`` [1, 10]."""
    b = GraphBuilder(rng)
    x, channels = "image", 3
    for stage in STAGES:
        for c_out in stage:
            x = b.op("Relu", [conv_bn(b, x, channels, c_out)])
            channels = c_out
        x = b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])])
    w = b.weight("fc_w", (channels, CLASSES), fan_in=channels)
    b.op("Gemm", [x, w, b.bias("fc_b", CLASSES)], out="logits")
    return b.finish(NAME, DESCRIPTION, {"image": (1, 3, SIZE, SIZE)}, {"logits": (1, CLASSES)})
