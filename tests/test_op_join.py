"""collector.op_join: profiled nodes joined to the cost of the graph ORT actually ran.

Real onnxruntime runs at "extended" (portable: FusedConv, FusedGemm) and "all" (NCHWc on x86),
the committed sample, and hand-made graph pairs that pin the attribution rules down.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from agent.engine.profile_ops import parse_profile, profile_ops, read_events
from agent.engine.session import SessionSettings
from collector import op_join
from collector.flops import count_model
from collector.op_join import join_ops
from shared.errors import ModelError
from tests.conftest import save_model
from tests.test_profile_ops import CONVNET_SHAPE, SAMPLES, convnet_model

DW_MACS = 16 * 32 * 32 * 9  # depthwise 3x3 over 16 channels of 32x32


def _held(row: dict[str, Any]) -> set[str]:
    return {row["node_name"], *row["fused_from"]}


def _flops_without_bn(original: Path) -> int:
    """The original model's FLOPs minus its BatchNormalization, which ORT folds into the conv."""
    report = count_model(original, CONVNET_SHAPE)
    return report.total.flops - sum(
        n.flops for n in report.nodes if n.op_type == "BatchNormalization"
    )


@pytest.mark.parametrize("level", ["extended", "all"])
def test_real_run_joins_every_profiled_node_and_finds_the_fusions(
    tmp_path: Path, level: str
) -> None:
    model = convnet_model(tmp_path / "convnet.onnx")
    settings = SessionSettings(threads=1, opt_level=level)
    prof = profile_ops(model, settings, {}, tmp_path / "work", runs=3, warmup_runs=1)
    joined = join_ops(prof.document, prof.optimized_model, model, CONVNET_SHAPE)
    assert joined.unmatched == [] and joined.not_profiled == []
    assert len(joined.rows) == len(prof.document["nodes"])
    assert all(row["kernel_time_us"] >= 0 and row["calls"] == 3 for row in joined.rows)
    assert {"bn1", "relu1", "add", "sig"} <= set(joined.fused_away)
    conv = next(row for row in joined.rows if "bn1" in _held(row))
    assert {"conv1", "bn1", "relu1"} <= _held(conv) and conv["kernel_time_us"] > 0
    gemm = next(row for row in joined.rows if "mm" in _held(row))
    assert {"mm", "add"} <= _held(gemm)
    depthwise = next(row for row in joined.rows if "dw" in _held(row))
    assert depthwise["macs"] == DW_MACS and depthwise["flops"] == 2 * DW_MACS
    assert depthwise["depthwise"] is True and conv["depthwise"] is False
    assert sum(row["flops"] for row in joined.rows) == _flops_without_bn(model)
    folded = count_model(model, CONVNET_SHAPE).total.flops - _flops_without_bn(model)
    assert folded > 0 and conv["folded_flops"] == folded  # the BN the conv absorbed
    assert sum(row["folded_flops"] for row in joined.rows) == folded
    assert any(row["op_type"] == "Softmax" for row in joined.rows)  # unnamed, found by index
    json.dumps(joined.to_json())


def test_committed_sample_joins_the_same_way() -> None:
    profile = {"nodes": parse_profile(read_events(SAMPLES / "convnet.extended.profile.json"), 1)}
    optimized = SAMPLES / "convnet.extended.optimized.onnx"
    joined = join_ops(profile, optimized, SAMPLES / "convnet.onnx", CONVNET_SHAPE)
    rows = {row["node_name"]: row for row in joined.rows}
    assert rows["conv1"]["op_type"] == "com.microsoft.FusedConv"
    assert rows["conv1"]["fused_from"] == ["bn1", "relu1"]
    assert rows["conv1"]["cost_source"] == "optimized graph"
    fused = rows["fused mm/MatMulAddFusion"]  # ORT's FusedGemm: MatMul+Add+Sigmoid
    assert fused["op_type"] == "com.microsoft.FusedGemm"
    assert fused["fused_from"] == ["mm", "add", "sig"]
    assert fused["cost_source"] == "optimized graph"
    assert fused["macs"] == 16 * 10 and fused["flops"] == 2 * 160 + 10 + 10  # = mm, add, sig
    assert joined.uncounted == []
    assert rows["Softmax#5"]["flops"] == 40
    assert joined.fused_away == ["bn1", "relu1", "mm", "add", "sig"]
    assert joined.unattributed == [] and joined.constant_folded == []


def test_unmatched_profile_nodes_are_listed_with_no_numbers() -> None:
    nodes = parse_profile(read_events(SAMPLES / "convnet.extended.profile.json"), 1)
    ghost = {"name": "ghost", "op_type": "Conv", "kernel_time_us": 9.0, "calls": 3}
    unnamed = {"name": "", "op_type": "Relu", "kernel_time_us": 1.0, "calls": 3}
    joined = join_ops(
        {"nodes": [*nodes, ghost, unnamed]},
        SAMPLES / "convnet.extended.optimized.onnx",
        SAMPLES / "convnet.onnx",
        CONVNET_SHAPE,
    )
    assert joined.unmatched == [ghost, unnamed]
    assert "ghost" not in {row["node_name"] for row in joined.rows}


def test_uncountable_optimized_graph_falls_back_to_original_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = op_join.count_model

    def refuse_optimized(path: Path, shapes: Any, input_values: Any = None) -> Any:
        if "optimized" in Path(path).name:
            raise ModelError("contradictory shapes")
        return real(path, shapes, input_values=input_values)

    monkeypatch.setattr(op_join, "count_model", refuse_optimized)
    nodes = parse_profile(read_events(SAMPLES / "convnet.extended.profile.json"), 1)
    joined = join_ops(
        {"nodes": nodes},
        SAMPLES / "convnet.extended.optimized.onnx",
        SAMPLES / "convnet.onnx",
        CONVNET_SHAPE,
    )
    rows = {row["node_name"]: row for row in joined.rows}
    assert any("optimized graph not counted" in note for note in joined.notes)
    assert rows["conv1"]["cost_source"] == "original nodes: conv1, relu1"  # BN folded: free
    assert rows["conv1"]["bytes"] is None
    assert rows["dw"]["macs"] == DW_MACS


def _conv(name: str, x: str, w: str, out: str) -> onnx.NodeProto:
    return helper.make_node("Conv", [x, w], [out], name=name, pads=[1, 1, 1, 1])


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    """A residual block and the graph ORT's NCHWc pass makes of it, with its naming: each
    conv is named <output tensor>_nchwc and the Add+Relu disappear into the second conv."""
    w = numpy_helper.from_array(np.ones((4, 4, 3, 3), np.float32), "w")
    io = (
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
    )
    original = helper.make_graph(
        [
            _conv("a", "x", "w", "ta"),
            helper.make_node("Relu", ["ta"], ["tr"], name="ra"),
            _conv("b", "tr", "w", "tb"),
            helper.make_node("Add", ["tb", "tr"], ["ts"], name="res"),
            helper.make_node("Relu", ["ts"], ["tq"], name="rb"),
            helper.make_node("Shape", ["x"], ["shape"], name="shape_of_x"),
            helper.make_node("Reshape", ["tq", "shape"], ["y"], name="reshape"),
        ],
        "block",
        *io,
        [w],
    )
    shape = numpy_helper.from_array(np.array([1, 4, 8, 8], np.int64), "shape")
    optimized = helper.make_graph(
        [
            _conv("tr_nchwc", "x", "w", "o1"),
            _conv("tb_nchwc", "o1", "w", "o2"),
            helper.make_node("Reshape", ["o2", "shape"], ["y"], name="reshape"),
        ],
        "block_optimized",
        *io,
        [w, shape],
    )
    return save_model(original, tmp_path / "o.onnx"), save_model(optimized, tmp_path / "p.onnx")


def test_nchwc_names_residual_adds_and_folded_shapes(tmp_path: Path) -> None:
    original, optimized = _pair(tmp_path)
    profile = {
        "nodes": [
            {"name": n, "calls": 1, "kernel_time_us": 1.0}
            for n in ("tr_nchwc", "tb_nchwc", "reshape")
        ]
    }
    joined = join_ops(profile, optimized, original, {"x": [1, 4, 8, 8]})
    rows = {row["node_name"]: row for row in joined.rows}
    assert rows["tr_nchwc"]["fused_from"] == ["a", "ra"]
    assert rows["tb_nchwc"]["fused_from"] == ["b", "res", "rb"]  # not the skip input's conv
    assert rows["reshape"]["fused_from"] == []
    assert joined.constant_folded == ["shape_of_x"]
    assert joined.fused_away == ["a", "ra", "b", "res", "rb", "shape_of_x"]


def _mobile_block(path: Path) -> Path:
    """A PP-OCR-like block at 12 channels (not a multiple of ORT's NCHWc block): Conv+BN+Relu6,
    depthwise Conv, hard-swish (Add, Clip, Mul, Div), pointwise Conv, residual Add,
    ConvTranspose, Sigmoid; H and W symbolic, as exporters leave them."""
    rng = np.random.default_rng(0)
    inits: list[onnx.TensorProto] = []

    def w(name: str, *shape: int) -> str:
        inits.append(numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name))
        return name

    for name, value in (("zero", 0.0), ("three", 3.0), ("six", 6.0)):
        inits.append(numpy_helper.from_array(np.array(value, np.float32), name))
    inits.append(numpy_helper.from_array(np.ones(12, np.float32), "var"))
    spec = [
        (
            "Conv",
            ["x", w("w0", 12, 3, 3, 3), w("b0", 12)],
            "c0",
            {"strides": [2, 2], "pads": [1] * 4},
        ),
        ("BatchNormalization", ["c0", w("s", 12), w("bb", 12), w("m", 12), "var"], "bn", {}),
        ("Clip", ["bn", "zero", "six"], "r0", {}),
        ("Conv", ["r0", w("wd", 12, 1, 3, 3)], "dw", {"group": 12, "pads": [1] * 4}),
        ("Add", ["dw", "three"], "ha", {}),
        ("Clip", ["ha", "zero", "six"], "hc", {}),
        ("Mul", ["dw", "hc"], "hm", {}),
        ("Div", ["hm", "six"], "hd", {}),
        ("Conv", ["hd", w("wp", 12, 12, 1, 1)], "pw", {}),
        ("Add", ["pw", "r0"], "res", {}),
        ("ConvTranspose", ["res", w("wt", 12, 8, 2, 2)], "up", {"strides": [2, 2]}),
        ("Sigmoid", ["up"], "y", {}),
    ]
    nodes = [helper.make_node(op, i, [o], name=f"{o}_n", **a) for op, i, o, a in spec]
    graph = helper.make_graph(
        nodes,
        "mobile_block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, "H2", "W2"])],
        inits,
    )
    return save_model(graph, path, opset=13)


def test_every_node_ort_ran_has_bytes_sized_by_the_profile_itself(tmp_path: Path) -> None:
    original = _mobile_block(tmp_path / "block.onnx")
    profiled = profile_ops(
        original, SessionSettings(threads=1), {"x": (1, 3, 64, 64)}, tmp_path, runs=2,
        warmup_runs=0,
    )  # fmt: skip
    kinds = {n["op_type"] for n in profiled.document["nodes"]}
    if "ReorderOutput" not in kinds:
        pytest.skip("this CPU's onnxruntime runs no NCHWc kernels")
    joined = join_ops(profiled.document, profiled.optimized_model, original, {"x": [1, 3, 64, 64]})
    assert joined.unmatched == [] and joined.uncounted == []
    assert [r["node_name"] for r in joined.rows if r["bytes"] is None or r["flops"] is None] == []
    # Sized from the profile, not from a collector-side onnxruntime run of the agent's graph:
    assert any("profile's own per-node shapes" in n for n in joined.notes)
    assert not any("onnxruntime run" in n for n in joined.notes), joined.notes
    by_op: dict[str, list[dict[str, Any]]] = {}
    for row in joined.rows:
        by_op.setdefault(row["op_type"], []).append(row)
    for row in by_op["com.microsoft.nchwc.ReorderOutput"]:  # NCHWc (padded) in, 12 ch out
        assert row["flops"] == 0 and row["bytes"] > 2 * 4 * 12 * 32 * 32
    convs = by_op["com.microsoft.nchwc.Conv"]
    model = {n.name: n.flops for n in count_model(original, {"x": [1, 3, 64, 64]}).nodes}
    held = ("c0_n", "bn_n", "r0_n", "dw_n", "pw_n")  # the convs, their BN and Relu6
    run = sum(r["flops"] + r["folded_flops"] for r in convs)
    assert run == sum(model[n] for n in held)  # the model's FLOPs, padding aside ...
    assert any((r.get("padded_flops") or 0) > 0 for r in convs)  # ... which is stated
    assert any("channels padded to ORT's block size" in n for n in joined.notes)


def test_a_profile_from_an_older_agent_without_types_still_sizes_nchwc_tensors(
    tmp_path: Path,
) -> None:
    original = _mobile_block(tmp_path / "block.onnx")
    profiled = profile_ops(
        original, SessionSettings(threads=1), {"x": (1, 3, 64, 64)}, tmp_path, runs=1,
        warmup_runs=0,
    )  # fmt: skip
    if not any(n["op_type"] == "ReorderOutput" for n in profiled.document["nodes"]):
        pytest.skip("this CPU's onnxruntime runs no NCHWc kernels")
    old = [{k: v for k, v in n.items() if k != "output_types"} for n in profiled.document["nodes"]]
    joined = join_ops({"nodes": old}, profiled.optimized_model, original, {"x": [1, 3, 64, 64]})
    assert [r["node_name"] for r in joined.rows if r["bytes"] is None] == []
    assert not any("onnxruntime run" in n for n in joined.notes), joined.notes
