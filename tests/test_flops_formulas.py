"""Closed-form checks of every formula, each on a one-node graph that onnxruntime also runs.

Expected numbers are worked out by hand from ``docs/FLOPS.md`` in each test, so a failure
says which formula drifted from the convention.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from collector.flops import DATA_MOVEMENT, FORMULAS, count_model
from collector.flops.formulas import FormulaError, broadcast
from collector.flops.formulas_linear import (
    conv,
    conv_out_spatial,
    conv_transpose,
    einsum_macs,
    fused_gemm,
    fused_matmul,
    gemm,
    matmul_macs,
    nchwc_conv,
)
from collector.flops.report import CostReport
from shared.errors import ModelError
from tests.test_flops_builders import init, ints, model, run, single, vi


def counted(m: onnx.ModelProto) -> CostReport:
    """Prove ``m`` runs in onnxruntime, then count it."""
    run(m)
    return count_model(m)


def only(report: CostReport, op: str) -> tuple[int, int]:
    """(MACs, FLOPs) of the single node of type ``op``."""
    (node,) = [n for n in report.nodes if n.op_type == op]
    return node.macs, node.flops


# --- Conv family ---------------------------------------------------------------------------


def test_grouped_conv_with_bias() -> None:
    # 16 out channels x 10x10 out x (8/4 = 2 in channels per group) x 3x3 = 28 800 MACs
    m = single(
        "Conv",
        [[1, 8, 10, 10]],
        [1, 16, 10, 10],
        [init("w", [16, 2, 3, 3]), init("b", [16])],
        group=4,
        pads=[1, 1, 1, 1],
    )
    assert only(counted(m), "Conv") == (28_800, 2 * 28_800 + 16 * 100)


def test_nchwc_conv_counts_the_padded_channels_it_ran() -> None:
    # 12 channels padded to ORT's block of 16: 16 out x 8x8 x 16 in x 1x1 = 16 384 MACs, plus
    # one FLOP per output element each for the bias and the fused Relu
    ins = [(1, 16, 8, 8), (16, 16, 1, 1), (16,)]
    cost = nchwc_conv(ins, [(1, 16, 8, 8)], {"activation": "Relu"})
    assert (cost.macs, cost.flops) == (16_384, 2 * 16_384 + 2 * 16 * 64)
    with pytest.raises(FormulaError, match="spatial"):
        nchwc_conv(ins, [(1, 16, 4, 4)], {})


def test_depthwise_strided_conv_without_bias() -> None:
    # 9x9, k3, s2, p1 -> 5x5; 8 channels x 25 x 1 x 9 = 1 800 MACs, no bias term
    m = single(
        "Conv", [[1, 8, 9, 9]], [1, 8, 5, 5], [init("w", [8, 1, 3, 3])],
        group=8, strides=[2, 2], pads=[1, 1, 1, 1],
    )  # fmt: skip
    assert only(counted(m), "Conv") == (1_800, 3_600)


def test_dilated_conv_batch_two() -> None:
    # k3 d2 spans 5 -> 16-5+1 = 12; 2 x 4 x 144 x 3 x 9 = 31 104 MACs
    m = single(
        "Conv", [[2, 3, 16, 16]], [2, 4, 12, 12], [init("w", [4, 3, 3, 3])], dilations=[2, 2]
    )
    assert only(counted(m), "Conv") == (31_104, 62_208)


@pytest.mark.parametrize(("auto_pad", "out"), [("SAME_UPPER", 8), ("SAME_LOWER", 8), ("VALID", 7)])
def test_conv_auto_pad_modes(auto_pad: str, out: int) -> None:
    m = single(
        "Conv", [[1, 3, 15, 15]], [1, 6, out, out], [init("w", [6, 3, 3, 3])],
        strides=[2, 2], auto_pad=auto_pad,
    )  # fmt: skip
    assert only(counted(m), "Conv")[0] == 6 * out * out * 27


def test_conv1d() -> None:
    m = single("Conv", [[1, 4, 20]], [1, 8, 16], [init("w", [8, 4, 5])])
    assert only(counted(m), "Conv")[0] == 8 * 16 * 4 * 5


def test_conv_transpose_k4_s2_is_not_doubled() -> None:
    # 10x10 -> (10-1)*2 - 2 + 4 = 20x20. MACs = N*C_in*in_spatial*(C_out/group)*k*k
    # = 8 * 100 * 4 * 16 = 51 200 (onnx-tool reports 2x this for k4 s2)
    m = single(
        "ConvTranspose", [[1, 8, 10, 10]], [1, 4, 20, 20],
        [init("w", [8, 4, 4, 4]), init("b", [4])], strides=[2, 2], pads=[1, 1, 1, 1],
    )  # fmt: skip
    assert only(counted(m), "ConvTranspose") == (51_200, 102_400 + 4 * 400)


def test_grouped_conv_transpose() -> None:
    m = single(
        "ConvTranspose", [[1, 8, 10, 10]], [1, 4, 20, 20], [init("w", [8, 2, 4, 4])],
        strides=[2, 2], pads=[1, 1, 1, 1], group=2,
    )  # fmt: skip
    assert only(counted(m), "ConvTranspose")[0] == 8 * 100 * 2 * 16


def test_conv_out_spatial_matches_onnx_rules() -> None:
    attrs = {"strides": [2], "pads": [1, 2], "dilations": [3]}
    assert conv_out_spatial([17], [3], attrs) == ((17 + 3 - 7) // 2 + 1,)
    assert conv_out_spatial([17], [3], {"strides": [4], "auto_pad": "SAME_LOWER"}) == (5,)


def test_conv_formula_rejects_channel_mismatch() -> None:
    with pytest.raises(FormulaError, match="channels"):
        conv([(1, 3, 8, 8), (4, 2, 3, 3)], [(1, 4, 6, 6)], {"group": 1})
    with pytest.raises(FormulaError):
        conv_transpose([(1, 3, 8, 8), (4, 2, 3, 3)], [(1, 2, 10, 10)], {})


# --- Gemm / MatMul / Einsum -----------------------------------------------------------------


def test_gemm_transposes_and_c() -> None:
    # A is [K, M] = [6, 4] with transA, B is [N, K] = [5, 6] with transB: 4*5*6 = 120 MACs
    m = single("Gemm", [[6, 4]], [4, 5], [init("b", [5, 6]), init("c", [5])], transA=1, transB=1)
    assert only(counted(m), "Gemm") == (120, 240 + 20)
    m = single("Gemm", [[4, 6]], [4, 5], [init("b", [6, 5])])
    assert only(counted(m), "Gemm") == (120, 240)
    with pytest.raises(FormulaError, match="inner"):
        gemm([(4, 6), (5, 6)], [(4, 5)], {})


@pytest.mark.parametrize(
    ("a", "b", "attrs"),
    [  # ORT 1.32 gives Y [3, 4, 2, 6] for each: M=2, K=5, N=6 over batch [3, 4]
        ((2, 3, 4, 5), (3, 4, 5, 6), {"transBatchA": 1}),
        ((3, 4, 2, 5), (5, 3, 4, 6), {"transBatchB": 1}),
        ((2, 3, 4, 5), (6, 3, 4, 5), {"transBatchA": 1, "transBatchB": 1, "transB": 1}),
    ],
)
def test_fused_matmul_moves_batch_dims_before_transposing(
    a: tuple[int, ...], b: tuple[int, ...], attrs: dict[str, int]
) -> None:
    cost = fused_matmul([a, b], [(3, 4, 2, 6)], attrs)
    assert (cost.macs, cost.flops) == (3 * 4 * 2 * 5 * 6, 2 * 3 * 4 * 2 * 5 * 6)


def test_fused_gemm_adds_its_activation() -> None:
    plain = fused_gemm([(4, 6), (6, 5), (5,)], [(4, 5)], {})
    relu = fused_gemm([(4, 6), (6, 5), (5,)], [(4, 5)], {"activation": "Relu"})
    assert (plain.macs, plain.flops) == (120, 240 + 20)
    assert (relu.macs, relu.flops) == (120, 240 + 20 + 20)


def test_batched_broadcast_matmul() -> None:
    # batch dims [2,1] and [3] broadcast to [2,3]; M=5, K=6, N=7
    m = single("MatMul", [[2, 1, 5, 6], [3, 6, 7]], [2, 3, 5, 7])
    assert only(counted(m), "MatMul") == (6 * 5 * 6 * 7, 2 * 6 * 5 * 6 * 7)


@pytest.mark.parametrize(
    ("a", "b", "out", "macs"),
    [
        ([6], [6, 7], [7], 42),
        ([4, 6], [6], [4], 24),
        ([6], [6], [], 6),
        ([3, 5, 6], [6], [3, 5], 90),
    ],
)
def test_matmul_one_dimensional_operands(
    a: list[int], b: list[int], out: list[int], macs: int
) -> None:
    assert only(counted(single("MatMul", [a, b], out)), "MatMul")[0] == macs


def test_matmul_inner_mismatch_is_rejected() -> None:
    with pytest.raises(FormulaError, match="inner"):
        matmul_macs((2, 3), (4, 5))
    with pytest.raises(FormulaError, match="broadcast"):
        matmul_macs((2, 3, 4), (5, 4, 6))


def test_einsum_products_of_index_sizes() -> None:
    m = single("Einsum", [[2, 3, 4], [2, 4, 5]], [2, 3, 5], opset=17, equation="bij,bjk->bik")
    assert only(counted(m), "Einsum") == (120, 240)
    m = single("Einsum", [[2, 3, 4], [4, 5]], [2, 3, 5], equation="...ij,jk->...ik")
    assert only(counted(m), "Einsum")[0] == 120
    assert einsum_macs("ij->ji", [(3, 4)]) == 12
    with pytest.raises(FormulaError):
        einsum_macs("ij,jk->ik", [(2, 3), (4, 5)])


# --- normalizations, softmax, elementwise ---------------------------------------------------


def test_batchnorm_two_per_element_and_foldable_after_conv() -> None:
    bn_inits = [init(n, [4]) for n in ("s", "bb", "mu", "var")]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("BatchNormalization", ["c", "s", "bb", "mu", "var"], ["y"], name="bn"),
        helper.make_node("BatchNormalization", ["y", "s", "bb", "mu", "var"], ["z"], name="bn2"),
    ]
    m = model(
        nodes,
        [vi("x", [2, 3, 6, 6])],
        [vi("z", [2, 4, 4, 4])],
        [init("w", [4, 3, 3, 3]), *bn_inits],
    )
    report = counted(m)
    bn, bn2 = (n for n in report.nodes if n.op_type == "BatchNormalization")
    assert (bn.flops, bn.macs) == (2 * 128, 0)
    assert bn.note == "foldable into preceding Conv" and bn2.note == ""


def test_layer_norm_with_and_without_bias() -> None:
    m = single("LayerNormalization", [[2, 5, 8]], [2, 5, 8], [init("g", [8]), init("b", [8])])
    assert only(counted(m), "LayerNormalization") == (0, 5 * 80)
    m = single("LayerNormalization", [[2, 5, 8]], [2, 5, 8], [init("g", [8])])
    assert only(counted(m), "LayerNormalization") == (0, 5 * 80)  # Scale is affine too


def test_instance_and_group_norm_are_affine() -> None:
    m = single(
        "InstanceNormalization", [[2, 3, 4, 4]], [2, 3, 4, 4], [init("s", [3]), init("b", [3])]
    )
    assert only(counted(m), "InstanceNormalization")[1] == 5 * 96
    m = single(
        "GroupNormalization", [[2, 4, 3, 3]], [2, 4, 3, 3], [init("s", [4]), init("b", [4])],
        opset=21, num_groups=2,
    )  # fmt: skip
    assert only(count_model(m), "GroupNormalization")[1] == 5 * 72
    try:
        run(m)
    except Exception as exc:  # older onnxruntime builds lack GroupNormalization-21
        pytest.skip(f"onnxruntime cannot run GroupNormalization-21 here: {exc}")


def test_mean_variance_normalization_has_no_affine() -> None:
    m = single("MeanVarianceNormalization", [[2, 3, 4, 4]], [2, 3, 4, 4])
    assert only(counted(m), "MeanVarianceNormalization")[1] == 4 * 96


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_four_per_element(op: str) -> None:
    assert only(counted(single(op, [[2, 10]], [2, 10])), op) == (0, 80)


@pytest.mark.parametrize(
    "op", ["Sigmoid", "Relu", "Tanh", "Erf", "Sqrt", "Exp", "HardSwish", "Neg"]
)
def test_unary_elementwise_one_per_element_no_weighting(op: str) -> None:
    assert only(counted(single(op, [[2, 3, 4]], [2, 3, 4])), op) == (0, 24)


def test_binary_elementwise_broadcasts() -> None:
    assert only(counted(single("Add", [[2, 3, 4], [4]], [2, 3, 4])), "Add")[1] == 24
    assert only(counted(single("Pow", [[2, 1, 4], [3, 1]], [2, 3, 4])), "Pow")[1] == 24
    with pytest.raises(FormulaError):
        broadcast((2, 3), (4,))


def test_isnan_is_counted_not_a_failure() -> None:
    m = single("IsNaN", [[5]], [5])
    m.graph.output[0].type.tensor_type.elem_type = TensorProto.BOOL
    assert only(counted(m), "IsNaN")[1] == 5


def test_clip_with_initializer_bounds() -> None:
    m = single("Clip", [[2, 8]], [2, 8], [init("lo", [], value=0.0), init("hi", [], value=6.0)])
    report = counted(m)
    assert only(report, "Clip")[1] == 16
    assert report.total.params == 0  # Clip bounds are configuration, not parameters


# --- pools, reductions, Resize --------------------------------------------------------------


def test_pools_count_window_elements() -> None:
    m = single("MaxPool", [[1, 3, 8, 8]], [1, 3, 4, 4], kernel_shape=[2, 2], strides=[2, 2])
    assert only(counted(m), "MaxPool")[1] == 48 * 4
    m = single("AveragePool", [[1, 3, 8, 8]], [1, 3, 8, 8], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    assert only(counted(m), "AveragePool")[1] == 192 * 9


def test_global_average_pool_and_reduce_mean_add_divisions() -> None:
    m = single("GlobalAveragePool", [[1, 3, 8, 8]], [1, 3, 1, 1])
    assert only(counted(m), "GlobalAveragePool")[1] == 192 + 3
    m = single("ReduceMean", [[1, 3, 8, 8]], [1, 3, 1, 1], axes=[2, 3])
    assert only(counted(m), "ReduceMean")[1] == 192 + 3


def test_reduce_sum_counts_inputs_only() -> None:
    m = single("ReduceSum", [[1, 3, 8, 8]], [1, 3, 1, 1], [ints("axes", [2, 3])])
    report = counted(m)
    assert only(report, "ReduceSum")[1] == 192
    assert report.total.params == 0


@pytest.mark.parametrize(
    ("mode", "out", "per_elem"),
    [("nearest", [1, 3, 8, 8], 0), ("linear", [1, 3, 8, 8], 4), ("cubic", [1, 3, 8, 8], 16),
     ("linear", [1, 3, 4, 8], 2)],
)  # fmt: skip
def test_resize_modes(mode: str, out: list[int], per_elem: int) -> None:
    ratio = (np.array(out) / [1, 3, 4, 4]).astype(np.float32)
    scales = onnx.numpy_helper.from_array(ratio, "scales")
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["y"], name="rs", mode=mode)]
    m = model(nodes, [vi("x", [1, 3, 4, 4])], [vi("y", out)], [scales])
    assert only(counted(m), "Resize")[1] == per_elem * int(np.prod(out))


def test_every_formula_documents_itself_in_one_line() -> None:
    for op, fn in FORMULAS.items():
        doc = (fn.__doc__ or "").strip()
        assert doc and "\n" not in doc, f"{op}: formula docstring must be one line"
    assert not (set(FORMULAS) & DATA_MOVEMENT)


# --- ops the onnx backend corpus needs (tests/test_corpus_backend.py) -----------------------


def test_lrn_counts_size_plus_four_per_element() -> None:
    m = single("LRN", [[1, 8, 5, 5]], [1, 8, 5, 5], size=5, alpha=1e-4, beta=0.75, bias=1.0)
    assert only(counted(m), "LRN") == (0, (5 + 4) * 200)
    m = single("LRN", [[1, 8, 5, 5]], [1, 8, 5, 5], size=3)
    assert only(counted(m), "LRN") == (0, (3 + 4) * 200)


def test_prelu_opset6_per_channel_slope_counts_like_opset7() -> None:
    # PRelu-6 takes a 1-D slope of length C as per-channel; opset 7 broadcasts [C,1,1] instead.
    legacy = single("PRelu", [[2, 3, 4, 5]], [2, 3, 4, 5], [init("s", [3])], opset=6)
    # (onnxruntime 1.32 has no PRelu-6 kernel, so only the opset-7 twin is run)
    modern = single("PRelu", [[2, 3, 4, 5]], [2, 3, 4, 5], [init("s", [3, 1, 1])])
    assert only(count_model(legacy), "PRelu") == only(counted(modern), "PRelu") == (0, 120)
    assert count_model(legacy).total.params == 3


def test_prelu_slope_that_fits_no_rule_is_contradictory() -> None:
    bad = single("PRelu", [[2, 3, 4, 5]], [2, 3, 4, 5], [init("s", [4])], opset=6)
    with pytest.raises(ModelError, match=r"slope \[4\] does not broadcast to X \[2, 3, 4, 5\]"):
        count_model(bad)


def test_constant_of_shape_weights_are_params() -> None:
    fill = helper.make_tensor("v", TensorProto.FLOAT, [1], [0.02])
    nodes = [
        helper.make_node("ConstantOfShape", ["w_shape"], ["w"], value=fill),
        helper.make_node("ConstantOfShape", ["pad_shape"], ["zeros"], value=fill),
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Add", ["c", "zeros"], ["y"]),
    ]
    inits = [ints("w_shape", [4, 3, 3, 3]), ints("pad_shape", [1, 4, 6, 6])]
    m = model(nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 6, 6])], inits)
    report = counted(m)
    # the Conv weight is a parameter; the same fill added to an activation is not
    assert report.total.params == 4 * 3 * 3 * 3


def test_string_ops_are_zero_flops_not_uncounted() -> None:
    node = helper.make_node(
        "StringNormalizer", ["x"], ["y"], case_change_action="LOWER", locale="C"
    )
    m = model([node], [vi("x", [3], TensorProto.STRING)], [vi("y", [3], TensorProto.STRING)])
    run(m, {"x": np.array(["A", "b", "C"], dtype=object)})
    report = count_model(m)
    assert report.uncounted == {} and report.total.flops == 0


def test_training_op_is_a_named_model_error() -> None:
    grad = helper.make_node(
        "Gradient", ["a", "b"], ["da"], name="g", domain="ai.onnx.preview.training",
        xs=["a"], y="s",
    )  # fmt: skip
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]), grad]
    io = [vi("a", [2]), vi("b", [2])]
    m = model(nodes, io, [vi("s", [2]), vi("da", [2])],
              extra_opsets=[("ai.onnx.preview.training", 1)])  # fmt: skip
    with pytest.raises(ModelError, match=r"node .g. is training op .*Gradient: flopgap counts"):
        count_model(m)


# --- recurrent ops (silero VAD, ddddocr: tests/data/wheel_models.toml) ---------------------


def _recurrent(op: str, gates: int, direction: str, bias: bool, layout: int = 0) -> CostReport:
    """One LSTM/GRU/RNN node: T=5 steps, N=2, I=3, H=4, run in onnxruntime, then counted.

    onnxruntime refuses batch-first ``layout=1``, so such a node is only counted.
    """
    d = 2 if direction == "bidirectional" else 1
    t, n, i, h = 5, 2, 3, 4
    inits = [init("w", [d, gates * h, i]), init("r", [d, gates * h, h])]
    inits += [init("b", [d, 2 * gates * h])] if bias else []
    names = ["x"] + [t.name for t in inits]
    x_dims, y_dims = ([n, t, i], [n, t, d, h]) if layout else ([t, n, i], [t, d, n, h])
    node = helper.make_node(
        op, names, ["y"], name="rec", hidden_size=h, direction=direction, layout=layout
    )
    m = model([node], [vi("x", x_dims)], [vi("y", y_dims)], inits, opset=14)
    return count_model(m) if layout else counted(m)


@pytest.mark.parametrize(
    ("op", "gates", "per_elem"), [("LSTM", 4, 13), ("GRU", 3, 10), ("RNN", 1, 2)]
)
def test_recurrent_macs_per_gate_and_step(op: str, gates: int, per_elem: int) -> None:
    macs = 5 * 2 * gates * 4 * (3 + 4)  # T·N·gates·H·(I+H)
    report = _recurrent(op, gates, "forward", bias=False)
    assert only(report, op) == (macs, 2 * macs + 5 * 2 * 4 * per_elem)
    both = _recurrent(op, gates, "bidirectional", bias=True)
    assert only(both, op) == (2 * macs, 2 * (2 * macs + 5 * 2 * 4 * (per_elem + 2 * gates)))
    assert only(_recurrent(op, gates, "bidirectional", bias=True, layout=1), op) == only(both, op)
    assert both.total.params == 2 * (gates * 4 * 3 + gates * 4 * 4 + 2 * gates * 4)


def test_dynamic_quantize_lstm_counts_integer_macs() -> None:
    from collector.flops.formulas_recurrent import dynamic_quantize_lstm

    # ddddocr's layout: W and R int8 [D, I, 4H], B float [D, 8H]; X [T, N, I]
    ins = [(7, 1, 512), (2, 512, 2048), (2, 512, 2048), (2, 4096)]
    cost = dynamic_quantize_lstm(ins, [(7, 2, 1, 512)], {"hidden_size": 512})
    assert cost.macs == 0
    assert cost.int_macs == 2 * 7 * 1 * 4 * 512 * (512 + 512)
    assert cost.flops == 2 * 7 * 1 * 512 * (13 + 8)
