"""Whole-graph behaviour: attention, quantized ops, control flow, uncounted ops, params, bytes.

Every graph here runs in onnxruntime (except the custom-domain op, which no runtime knows),
and every expected count is worked out by hand in the test.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from collector.flops import CONVENTION, count_model
from collector.flops.report import CostReport
from tests.test_flops_builders import encoder, init, ints, model, run, single, vi

U8 = TensorProto.UINT8


def counted(m: onnx.ModelProto, feeds: dict[str, np.ndarray] | None = None) -> CostReport:
    """Prove ``m`` runs in onnxruntime, then count it."""
    run(m, feeds)
    return count_model(m)


def scalar(name: str, value: float, dtype: type = np.float32) -> onnx.TensorProto:
    """A 0-d initializer."""
    return onnx.numpy_helper.from_array(np.array(value, dtype=dtype), name)


# --- attention ------------------------------------------------------------------------------


def test_ms_attention_counts_projection_scores_and_softmax() -> None:
    # B=2, S=8, hidden 16, 2 heads. Projection 2*8*16*48 = 12 288 MACs; Q.K^T and A.V
    # 2*8*8*16 = 2 048 each. FLOPs: 2*16 384 + bias 2*8*48 + softmax 4*2*2*8*8.
    node = helper.make_node(
        "Attention", ["x", "w", "b"], ["y"], name="att", domain="com.microsoft", num_heads=2
    )
    m = model(
        [node], [vi("x", [2, 8, 16])], [vi("y", [2, 8, 16])],
        [init("w", [16, 48]), init("b", [48])], extra_opsets=[("com.microsoft", 1)],
    )  # fmt: skip
    total = counted(m).total
    assert (total.macs, total.flops) == (16_384, 32_768 + 768 + 1_024)
    assert total.params == 16 * 48 + 48


def test_ms_multi_head_attention_counts_scores_only() -> None:
    # S=8 queries, L=6 keys, D=16, 2 heads: 2*8*6*(16+16) = 3 072 MACs, softmax 4*2*2*8*6
    node = helper.make_node(
        "MultiHeadAttention", ["q", "k", "v"], ["y"], domain="com.microsoft", num_heads=2
    )
    m = model(
        [node], [vi("q", [2, 8, 16]), vi("k", [2, 6, 16]), vi("v", [2, 6, 16])],
        [vi("y", [2, 8, 16])], extra_opsets=[("com.microsoft", 1)],
    )  # fmt: skip
    total = counted(m).total
    assert (total.macs, total.flops) == (3_072, 6_144 + 768)
    assert "com.microsoft.MultiHeadAttention" in count_model(m).by_op_type


def test_bert_base_macs_match_the_closed_form() -> None:
    # One BERT-base layer at S=128: 4*S*d^2 + 2*S^2*d + 2*S*d*d_ff; twelve make 11.17 GMACs.
    s, d, ff = 128, 768, 3072
    per_layer = 4 * s * d * d + 2 * s * s * d + 2 * s * d * ff
    report = count_model(encoder(1, d, 12, s, ff))
    assert report.total.macs == per_layer
    assert round(12 * report.total.macs / 1e9, 2) == 11.17
    assert report.uncounted == {}


# --- quantized ------------------------------------------------------------------------------


def test_integer_ops_count_int_macs_not_flops() -> None:
    nodes = [
        helper.make_node("ConvInteger", ["x", "w"], ["c"], name="convint"),
        helper.make_node("MatMulInteger", ["a", "b"], ["mm"], name="mmint"),
    ]
    m = model(
        nodes, [vi("x", [1, 2, 5, 5], U8), vi("a", [4, 6], U8)],
        [vi("c", [1, 3, 3, 3], TensorProto.INT32), vi("mm", [4, 5], TensorProto.INT32)],
        [init("w", [3, 2, 3, 3], np.uint8, 1), init("b", [6, 5], np.uint8, 1)],
    )  # fmt: skip
    feeds = {"x": np.ones((1, 2, 5, 5), np.uint8), "a": np.ones((4, 6), np.uint8)}
    report = counted(m, feeds)
    assert report.total.int_macs == 3 * 9 * 2 * 9 + 4 * 5 * 6
    assert (report.total.macs, report.total.flops) == (0, 0)


def test_qlinear_matmul_and_conv() -> None:
    q = [scalar("s", 0.1), scalar("z", 0, np.uint8)]
    nodes = [
        helper.make_node("QLinearMatMul", ["a", "s", "z", "b", "s", "z", "s", "z"], ["y"]),
        helper.make_node("QLinearConv", ["x", "s", "z", "w", "s", "z", "s", "z"], ["c"]),
    ]
    m = model(
        nodes, [vi("a", [4, 6], U8), vi("x", [1, 2, 5, 5], U8)],
        [vi("y", [4, 5], U8), vi("c", [1, 3, 3, 3], U8)],
        [*q, init("b", [6, 5], np.uint8, 1), init("w", [3, 2, 3, 3], np.uint8, 1)],
    )  # fmt: skip
    feeds = {"a": np.ones((4, 6), np.uint8), "x": np.ones((1, 2, 5, 5), np.uint8)}
    report = counted(m, feeds)
    assert report.total.int_macs == 120 + 486
    assert report.by_op_type["QLinearConv"].int_macs == 486


# --- control flow ---------------------------------------------------------------------------


def _loop_model(trip: onnx.TensorProto | None) -> onnx.ModelProto:
    """h <- h @ W repeated; trip count from an initializer, or from graph input 'n'."""
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["h_in", "w"], ["h_out"], name="step"),
            helper.make_node("Identity", ["c_in"], ["c_out"]),
        ],
        "body",
        [vi("i", [], TensorProto.INT64), vi("c_in", [], TensorProto.BOOL), vi("h_in", [1, 4])],
        [vi("c_out", [], TensorProto.BOOL), vi("h_out", [1, 4])],
    )
    loop = helper.make_node("Loop", ["n", "cond", "h0"], ["h"], name="loop", body=body)
    inputs = [vi("h0", [1, 4])] + ([] if trip is not None else [vi("n", [], TensorProto.INT64)])
    inits = [init("w", [4, 4]), onnx.numpy_helper.from_array(np.array(True), "cond")]
    return model([loop], inputs, [vi("h", [1, 4])], inits + ([trip] if trip else []))


def test_loop_with_static_trip_count_multiplies_the_body() -> None:
    report = counted(_loop_model(scalar("n", 3, np.int64)))
    assert report.total.macs == 3 * 16
    assert report.uncounted == {}
    step = next(n for n in report.nodes if n.name == "loop/body/step")
    assert step.macs == 48 and "x3" in step.note
    assert any("x3" in a for a in report.assumptions)


def test_loop_with_dynamic_trip_count_counts_once_and_says_so() -> None:
    m = _loop_model(None)
    run(m, {"h0": np.ones((1, 4), np.float32), "n": np.array(5, np.int64)})
    report = count_model(m)
    assert report.total.macs == 16
    assert any("ONE iteration" in a for a in report.assumptions)


def test_if_counts_the_larger_branch() -> None:
    then = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["t"], name="mm")], "then", [], [vi("t", [1, 4])]
    )
    other = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["e"], name="relu")], "else", [], [vi("e", [1, 4])]
    )
    node = helper.make_node("If", ["c"], ["y"], name="if", then_branch=then, else_branch=other)
    m = model(
        [node],
        [vi("c", [], TensorProto.BOOL), vi("x", [1, 4])],
        [vi("y", [1, 4])],
        [init("w", [4, 4])],
    )
    run(m, {"c": np.array(False), "x": np.ones((1, 4), np.float32)})
    report = count_model(m)
    assert (report.total.macs, report.total.flops) == (16, 32)
    assert report.uncounted == {} and "control flow" in report.nodes[0].note
    assert [n.name for n in report.nodes] == ["if", "if/then_branch/mm"]
    assert any("then_branch" in a and "larger" in a for a in report.assumptions)
    assert report.total.params == 16


def test_scan_counts_body_times_sequence_length() -> None:
    body = helper.make_graph(
        [
            helper.make_node("Add", ["s_in", "x_t"], ["s_out"], name="acc"),
            helper.make_node("Identity", ["s_out"], ["y_t"]),
        ],
        "body",
        [vi("s_in", [4]), vi("x_t", [4])],
        [vi("s_out", [4]), vi("y_t", [4])],
    )
    node = helper.make_node("Scan", ["s0", "xs"], ["s", "ys"], body=body, num_scan_inputs=1)
    m = model([node], [vi("s0", [4]), vi("xs", [5, 4])], [vi("s", [4]), vi("ys", [5, 4])])
    report = counted(m)
    assert report.total.flops == 5 * 4
    assert report.uncounted == {}
    assert any("x5" in a for a in report.assumptions)


# --- uncounted ops --------------------------------------------------------------------------


def test_op_without_formula_is_listed_not_silently_zero() -> None:
    report = counted(single("Det", [[3, 3]], []))
    assert report.uncounted == {"Det": 1}
    (det,) = report.nodes
    assert det.flops == 0 and det.bytes_read == 36 and det.bytes_written == 4
    assert "uncounted" in det.note


def test_custom_domain_op_is_uncounted_with_its_domain() -> None:
    nodes = [
        helper.make_node("Frobnicate", ["x"], ["f"], name="frob", domain="my.ops"),
        helper.make_node("Relu", ["f"], ["y"], name="relu"),
    ]
    m = model(nodes, [vi("x", [2, 3])], [vi("y", [2, 3])], extra_opsets=[("my.ops", 1)])
    m.graph.value_info.append(vi("f", [2, 3]))
    report = count_model(m)
    assert report.uncounted == {"my.ops.Frobnicate": 1}
    assert report.total.flops == 6 and report.total.bytes == 4 * 24


# --- params and bytes -----------------------------------------------------------------------


def test_params_skip_shape_tensors_and_count_shared_weights_once() -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="mm1"),
        helper.make_node("MatMul", ["a", "w"], ["b"], name="mm2"),
        helper.make_node("Reshape", ["b", "shape"], ["y"], name="rs"),
    ]
    m = model(nodes, [vi("x", [2, 8])], [vi("y", [16])], [init("w", [8, 8]), ints("shape", [16])])
    report = counted(m)
    assert report.total.params == 64
    assert [n.params for n in report.nodes] == [64, 64, 0]


def test_float_constant_weights_count_but_constant_scalars_do_not() -> None:
    weight = helper.make_tensor("wv", TensorProto.FLOAT, [4, 3, 1, 1], [0.1] * 12)
    nodes = [
        helper.make_node("Constant", [], ["w"], value=weight),
        helper.make_node("Constant", [], ["k"], value=helper.make_tensor("kv", 1, [], [2.0])),
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Mul", ["c", "k"], ["y"], name="mul"),
    ]
    m = model(nodes, [vi("x", [1, 3, 4, 4])], [vi("y", [1, 4, 4, 4])])
    assert counted(m).total.params == 12


def test_bytes_per_node_unique_bytes_and_intensity() -> None:
    m = single("Conv", [[1, 3, 8, 8]], [1, 4, 6, 6], [init("w", [4, 3, 3, 3]), init("b", [4])])
    (conv,) = counted(m).nodes
    assert (conv.bytes_read, conv.bytes_written) == (768 + 432 + 16, 576)
    assert conv.flops == 2 * 4 * 36 * 27 + 144
    assert conv.intensity == pytest.approx(conv.flops / (1216 + 576))
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Relu", ["r"], ["y"])]
    m = model(
        nodes, [vi("x", [1, 256], TensorProto.FLOAT16)], [vi("y", [1, 256], TensorProto.FLOAT16)]
    )
    total = count_model(m).total
    assert (total.bytes, total.unique_bytes) == (4 * 512, 3 * 512)
    assert total.intensity == pytest.approx(512 / 2048)


# --- JSON -----------------------------------------------------------------------------------


def test_json_document_keys() -> None:
    report = count_model(single("Relu", [[2, 2]], [2, 2]))
    doc = report.to_json(per_node=False)
    assert list(doc) == [
        "convention", "model", "inputs", "total", "by_op_type", "uncounted", "assumptions",
        "input_values", "at_these_inputs",  # added after, so older readers see the same prefix
    ]  # fmt: skip
    assert doc["input_values"] == {} and doc["at_these_inputs"] is False
    assert doc["convention"] == CONVENTION
    assert set(doc["total"]) == {
        "macs", "int_macs", "flops", "flops_2mac", "params", "bytes", "unique_bytes", "intensity",
    }  # fmt: skip
    assert doc["by_op_type"] == {
        "Relu": {"count": 1, "macs": 0, "int_macs": 0, "flops": 4, "bytes": 32}
    }
    assert doc["inputs"] == {"x0": [2, 2]}
    with_nodes = report.to_json(per_node=True)
    assert list(with_nodes)[5] == "nodes" and with_nodes["nodes"][0]["name"] == "the_relu"
    assert set(with_nodes["nodes"][0]) >= {"name", "op_type", "macs", "flops", "bytes_read", "note"}
    json.dumps(with_nodes)
