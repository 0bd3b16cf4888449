"""The table from op type to formula, and which op inputs hold parameters.

Keys are ONNX op types for the default domain and ``domain.OpType`` for others
(``com.microsoft.Attention``), so a custom op that happens to be called ``Conv`` is never
mistaken for the standard one. An op type in neither ``FORMULAS`` nor ``DATA_MOVEMENT`` (nor
control flow) is reported as uncounted, never silently zeroed.
"""

from __future__ import annotations

from collector.flops import formulas_attention as att
from collector.flops import formulas_linear as lin
from collector.flops import formulas_recurrent as rec
from collector.flops import formulas_spatial as spa
from collector.flops.formulas import (
    Formula,
    binary_elementwise,
    data_movement,
    per_output_element,
    prelu,
    reduction,
    unary_elementwise,
)

MS = "com.microsoft"
NCHWC = "com.microsoft.nchwc"  # ORT's x86/ARM64 blocked-layout kernels (channels padded)

UNARY = (
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "BitwiseNot", "Ceil", "Celu",
    "Clip", "Cos", "Cosh", "DequantizeLinear", "DynamicQuantizeLinear", "Elu", "Erf", "Exp",
    "Floor", "Gelu", "HardSigmoid", "HardSwish", "IsInf", "IsNaN", "LeakyRelu", "Log", "Mish",
    "Neg", "Not", "QuantizeLinear", "Reciprocal", "Relu", "Round", "Selu", "Shrink", "Sigmoid",
    "Sign", "Sin", "Sinh", "Softplus", "Softsign", "Sqrt", "Swish", "Tan", "Tanh",
    "ThresholdedRelu", f"{MS}.Gelu", f"{MS}.FastGelu", f"{MS}.QuickGelu",
)  # fmt: skip
BINARY = (
    "Add", "And", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "Div", "Equal",
    "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Max", "Mean", "Min", "Mod", "Mul", "Or",
    "Pow", "Sub", "Sum", "Xor", f"{MS}.BiasGelu",
)  # fmt: skip
REDUCE = (
    "ArgMax", "ArgMin", "CumSum", "GlobalLpPool", "GlobalMaxPool", "Hardmax", "ReduceL1",
    "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMin", "ReduceProd",
    "ReduceSum", "ReduceSumSquare", "TopK",
)  # fmt: skip
NORMALIZATION = (
    "GroupNormalization", "InstanceNormalization", "LayerNormalization",
    "MeanVarianceNormalization", "RMSNormalization",
)  # fmt: skip

# Ops on string tensors: no floating-point arithmetic at all, so 0 FLOPs by rule (their bytes
# are still counted when the strings' sizes are known, which they rarely are).
STRING_OPS = data_movement("RegexFullMatch", "StringConcat", "StringNormalizer", "StringSplit")

# Training ops (ai.onnx.preview.training): a Gradient's cost is the backward pass of a subgraph
# it names by tensor names, which no fixed formula gives, and ONNX Runtime's inference build
# runs none of them. flopgap counts inference graphs, so a node of these is a named ModelError.
TRAINING_DOMAIN = "ai.onnx.preview.training"
TRAINING_OPS = frozenset(
    f"{TRAINING_DOMAIN}.{op}" for op in ("Adagrad", "Adam", "Gradient", "Momentum")
)

DATA_MOVEMENT = data_movement(
    "Cast", "CastLike", "CenterCropPad", "Compress", "Concat", "ConcatFromSequence", "Constant",
    "ConstantOfShape", "DepthToSpace", "Dropout", "Expand", "EyeLike", "Flatten", "Gather",
    "GatherElements", "GatherND", "Identity", "NonZero", "OneHot", "Optional",
    "OptionalGetElement", "OptionalHasElement", "Pad", "Range", "Reshape", "ReverseSequence",
    "Scatter", "ScatterElements", "ScatterND", "SequenceAt", "SequenceConstruct", "SequenceEmpty",
    "SequenceErase", "SequenceInsert", "SequenceLength", "Shape", "Size", "Slice", "SpaceToDepth",
    "Split", "SplitToSequence", "Squeeze", "Tile", "Transpose", "Trilu", "Unsqueeze", "Where",
    f"{NCHWC}.ReorderInput", f"{NCHWC}.ReorderOutput",
) | STRING_OPS  # fmt: skip
CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})

FORMULAS: dict[str, Formula] = {
    "Conv": lin.conv,
    "ConvTranspose": lin.conv_transpose,
    "Gemm": lin.gemm,
    "MatMul": lin.matmul,
    "Einsum": lin.einsum,
    "QLinearConv": lin.qlinear_conv,
    "ConvInteger": lin.conv_integer,
    "QLinearMatMul": lin.qlinear_matmul,
    "MatMulInteger": lin.matmul_integer,
    f"{MS}.FusedConv": lin.fused_conv,
    f"{MS}.FusedMatMul": lin.fused_matmul,
    f"{MS}.FusedGemm": lin.fused_gemm,
    f"{NCHWC}.Conv": lin.nchwc_conv,
    f"{NCHWC}.MaxPool": spa.pool,
    f"{NCHWC}.AveragePool": spa.pool,
    f"{NCHWC}.GlobalMaxPool": reduction(mean=False),
    f"{NCHWC}.GlobalAveragePool": reduction(mean=True),
    f"{NCHWC}.Upsample": spa.resize,
    "LSTM": rec.lstm,
    "GRU": rec.gru,
    "RNN": rec.rnn,
    f"{MS}.DynamicQuantizeLSTM": rec.dynamic_quantize_lstm,
    "Attention": att.onnx_attention,
    f"{MS}.Attention": att.ms_attention,
    f"{MS}.MultiHeadAttention": att.ms_multi_head_attention,
    "PRelu": prelu,
    "LRN": spa.lrn,
    "BatchNormalization": per_output_element(2, "batch_normalization"),
    "Softmax": per_output_element(4, "softmax"),
    "LogSoftmax": per_output_element(4, "log_softmax"),
    f"{MS}.SkipLayerNormalization": spa.skip_layer_norm,
    "MaxPool": spa.pool,
    "AveragePool": spa.pool,
    "LpPool": spa.pool,
    "Resize": spa.resize,
    "Upsample": spa.resize,
    "GlobalAveragePool": reduction(mean=True),
    "ReduceMean": reduction(mean=True),
    **dict.fromkeys(NORMALIZATION, spa.normalization),
    **dict.fromkeys(REDUCE, reduction(mean=False)),
    **dict.fromkeys(UNARY, unary_elementwise(1)),
    **dict.fromkeys(BINARY, binary_elementwise(1)),
}

KNOWN_OP_TYPES: frozenset[str] = frozenset(FORMULAS) | DATA_MOVEMENT | CONTROL_FLOW

# Op types whose formula reads shapes only, never attributes: the walk does not parse their
# attributes and computes their cost once per distinct shapes (most nodes of a model repeat).
SHAPE_ONLY: frozenset[str] = frozenset(
    (*UNARY, *BINARY, *REDUCE, *NORMALIZATION, "PRelu", "BatchNormalization", "Softmax",
     "LogSoftmax", "GlobalAveragePool", "ReduceMean", "MatMul", "QLinearMatMul", "MatMulInteger",
     f"{MS}.SkipLayerNormalization")
)  # fmt: skip

# Input slots that hold configuration, never parameters, even when they are float initializers.
CONTROL_SLOTS: dict[str, tuple[int, ...]] = {
    "Clip": (1, 2), "Dropout": (1, 2), "Pad": (1, 2, 3), "Range": (0, 1, 2),
    "Resize": (1, 2, 3), "Upsample": (1,), "QuantizeLinear": (1, 2),
    "DequantizeLinear": (1, 2), "QLinearConv": (1, 2, 4, 5, 6, 7),
    "QLinearMatMul": (1, 2, 4, 5, 6, 7), "ConstantOfShape": (0,),
    f"{MS}.DynamicQuantizeLSTM": (8, 9, 10, 11),
}  # fmt: skip

# Input slots whose float Constant-node values are weights (paddle2onnx stores weights this
# way); a Constant anywhere else (Clip bounds, anchors, scalars) is not a parameter.
WEIGHT_SLOTS: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (0, 1, 2), "MatMul": (0, 1),
    "Einsum": (0, 1, 2), "BatchNormalization": (1, 2, 3, 4), "LayerNormalization": (1, 2),
    "GroupNormalization": (1, 2), "InstanceNormalization": (1, 2), "RMSNormalization": (1,),
    "PRelu": (1,), "Gather": (0,), "LSTM": (1, 2, 3, 7), "GRU": (1, 2, 3), "RNN": (1, 2, 3),
    f"{MS}.Attention": (1, 2), f"{MS}.FusedConv": (1, 2),
    f"{MS}.FusedMatMul": (0, 1), f"{MS}.FusedGemm": (0, 1, 2),
    f"{MS}.SkipLayerNormalization": (2, 3, 4),
}  # fmt: skip

_DEFAULT_DOMAINS = ("", "ai.onnx")


def op_key(domain: str, op_type: str) -> str:
    """Registry key of an op: the op type for the default domain, else ``domain.OpType``."""
    return op_type if domain in _DEFAULT_DOMAINS else f"{domain}.{op_type}"
