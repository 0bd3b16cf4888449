"""collector.predict.optimize: the collector's copy of the graph a board runs, against a real
profiled run of the same model (the agent's own profile pass), its cache, and its errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from agent.engine.profile_ops import profile_ops
from agent.engine.session import SessionSettings
from collector.predict.optimize import OptimizedGraph, optimize_for_device
from collector.sweep.families import build_model
from collector.sweep.space import make_sample
from shared.errors import ModelError, UsageError
from shared.input_values import parse_value
from shared.settings import OPT_LEVELS, ORT_LEVEL_NAMES
from tests.conftest import save_model

SHAPE = {"x": (1, 8, 16, 16)}
_PROFILER_UNNAMED = re.compile(r"^\w+_\d+$")  # ORT's profiler calls an unnamed node Type_index


def block_graph(batch: int | str = 1) -> onnx.GraphProto:
    """Conv+BN+Relu (fused by ORT), then an unnamed Softmax and a MatMul+Add (a Gemm)."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.random(shape, dtype=np.float32) + 0.5, name)

    node = helper.make_node
    nodes = [
        node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], name="bn"),
        node("Relu", ["bn"], ["r"], name="relu"),
        node("Softmax", ["r"], ["sm"], axis=1),
        node("GlobalAveragePool", ["sm"], ["g"], name="gap"),
        node("Flatten", ["g"], ["f"], name="flat"),
        node("MatMul", ["f", "wm"], ["mm"], name="mm"),
        node("Add", ["mm", "bm"], ["y"], name="add"),
    ]
    inits = [weight("w", 16, 8, 3, 3), *(weight(n, 16) for n in "sbmv")]
    inits += [weight("wm", 16, 10), weight("bm", 10)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 8, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return helper.make_graph(nodes, "block", [x], [y], inits)


def _profiled(model: Path, opt_level: str, work: Path) -> list[dict[str, Any]]:
    """The agent's per-op profile of one run of `model` at `opt_level`, one thread."""
    settings = SessionSettings(threads=1, opt_level=opt_level)
    return list(profile_ops(model, settings, SHAPE, work, runs=1, warmup_runs=0).document["nodes"])


def _shapes(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["op_type"], row["input_shapes"], row["output_shapes"], row["output_types"])


def _same_as_profile(graph: OptimizedGraph, profiled: list[dict[str, Any]]) -> None:
    """Named nodes match the profile by name; unnamed ones (named by index, differently on
    each side) match as a multiset of op types and shapes."""
    ours = {r["name"]: r for r in graph.nodes if "#" not in r["name"]}
    theirs = {r["name"]: r for r in profiled if not _PROFILER_UNNAMED.match(r["name"])}
    assert ours.keys() == theirs.keys()
    for name, row in ours.items():
        assert _shapes(row) == _shapes(theirs[name]), name
    rest = sorted(repr(_shapes(r)) for r in graph.nodes if "#" in r["name"])
    assert rest == sorted(repr(_shapes(r)) for r in profiled if _PROFILER_UNNAMED.match(r["name"]))


@pytest.fixture
def block(tmp_path: Path) -> Path:
    return save_model(block_graph(), tmp_path / "block.onnx")


def test_every_opt_level_name_is_an_onnxruntime_level() -> None:
    assert OPT_LEVELS == tuple(ORT_LEVEL_NAMES)
    for member in ORT_LEVEL_NAMES.values():
        assert isinstance(getattr(ort.GraphOptimizationLevel, member), ort.GraphOptimizationLevel)


def test_all_gives_the_fused_graph_the_profiler_reports(block: Path, tmp_path: Path) -> None:
    graph = optimize_for_device(block, opt_level="all", cache_dir=tmp_path / "cache")
    ops = [r["op_type"] for r in graph.nodes]
    assert "BatchNormalization" not in ops and "Relu" not in ops and "MatMul" not in ops
    assert graph.input_shapes == {"x": [1, 8, 16, 16]} and graph.opt_level == "all"
    assert all(r["kernel_time_us"] is None and r["calls"] == 1 for r in graph.nodes)
    names = [r["name"] for r in graph.nodes]
    assert len(set(names)) == len(names) and any("#" in n for n in names)  # Softmax unnamed
    assert graph.path.is_file() and graph.onnxruntime == ort.__version__
    _same_as_profile(graph, _profiled(block, "all", tmp_path / "prof"))


def test_a_sweep_conv_block_becomes_its_fused_or_nchwc_kernel(tmp_path: Path) -> None:
    params = {"k": 3, "cin": 16, "cout": 32, "groups": 1, "size": 28, "stride": 1,
              "dilation": 1, "pad": "same", "act": "relu"}  # fmt: skip
    sample = make_sample("conv_bn_act", params)
    model = tmp_path / "conv_bn_act.onnx"
    onnx.save(build_model(sample), str(model))
    graph = optimize_for_device(model, cache_dir=tmp_path / "cache")
    domains = {n.domain for n in onnx.load(str(graph.path)).graph.node}
    convs = [r for r in graph.nodes if r["op_type"] in ("Conv", "FusedConv")]
    assert len(convs) == 1 and convs[0]["output_shapes"] == [[1, 32, 28, 28]]
    assert convs[0]["input_shapes"][1] == [32, 16, 3, 3]  # the weight, an initializer
    assert "BatchNormalization" not in {r["op_type"] for r in graph.nodes}
    assert "com.microsoft.nchwc" in domains or convs[0]["op_type"] == "FusedConv"
    settings = SessionSettings(threads=1)
    profile = profile_ops(model, settings, {"x": (1, 16, 28, 28)}, tmp_path / "p", runs=1)
    _same_as_profile(graph, profile.document["nodes"])


def test_disable_keeps_the_original_nodes(block: Path, tmp_path: Path) -> None:
    graph = optimize_for_device(block, opt_level="disable", cache_dir=tmp_path / "cache")
    original = onnx.load(str(block)).graph.node
    assert [r["op_type"] for r in graph.nodes] == [n.op_type for n in original]
    assert [r["name"] for r in graph.nodes][:3] == ["conv", "bn", "relu"]
    assert graph.nodes[3]["name"] == "Softmax#3"  # collector.flops' label of an unnamed node
    assert graph.nodes[1]["input_shapes"] == [[1, 16, 16, 16], [16], [16], [16], [16]]
    _same_as_profile(graph, _profiled(block, "disable", tmp_path / "prof"))


def test_empty_optional_inputs_are_left_out_as_the_profiler_leaves_them(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["r"], mode="nearest", name="resize"),
        helper.make_node("Clip", ["r", "", "top"], ["y"], name="clip"),
    ]
    inits = [
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        numpy_helper.from_array(np.array(0.5, np.float32), "top"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = save_model(helper.make_graph(nodes, "g", [x], [y], inits), tmp_path / "opt.onnx")
    graph = optimize_for_device(model, opt_level="disable", cache_dir=tmp_path / "cache")
    assert graph.nodes[1]["input_shapes"] == [[1, 8, 32, 32], []]  # [r, top]: min is absent
    _same_as_profile(graph, _profiled(model, "disable", tmp_path / "prof"))


def test_a_cache_hit_starts_no_onnxruntime_session(
    block: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = optimize_for_device(block, cache_dir=cache)
    mtime = first.path.stat().st_mtime_ns

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a cache hit started an onnxruntime session")

    monkeypatch.setattr(ort, "InferenceSession", refuse)
    again = optimize_for_device(block, cache_dir=cache, device_onnxruntime="1.17.0")
    assert (again.path, again.sha256, again.nodes) == (first.path, first.sha256, first.nodes)
    assert again.path.stat().st_mtime_ns == mtime
    assert [p.name for p in cache.iterdir()] == [first.path.parent.name]  # no temp left over
    with pytest.raises(ModelError, match="cache hit"):  # another level is another entry
        optimize_for_device(block, opt_level="basic", cache_dir=cache)


def test_an_unreadable_cache_entry_is_rebuilt(block: Path, tmp_path: Path) -> None:
    first = optimize_for_device(block, cache_dir=tmp_path / "cache")
    (first.path.parent / "nodes.json").write_text("{half", encoding="utf-8")
    again = optimize_for_device(block, cache_dir=tmp_path / "cache")
    assert again.nodes == first.nodes and again.path == first.path


def test_a_dynamic_dim_without_a_shape_is_refused_naming_it(tmp_path: Path) -> None:
    model = save_model(block_graph(batch="N"), tmp_path / "dyn.onnx")
    with pytest.raises(UsageError, match=r"input 'x'.*dim 0") as err:
        optimize_for_device(model, cache_dir=tmp_path / "cache")
    assert "--input x=Nx8x16x16" in str(err.value.hint)
    given = optimize_for_device(model, input_shapes={"x": [2, 8, 16, 16]}, cache_dir=tmp_path)
    assert given.input_shapes == {"x": [2, 8, 16, 16]}
    assert given.nodes[-1]["output_shapes"] == [[2, 10]]


def test_an_input_value_sizes_the_graph_and_keys_the_cache(tmp_path: Path) -> None:
    model = save_model(block_graph(batch="N"), tmp_path / "dyn.onnx")
    values = {"x": parse_value("x", "zeros[3,8,16,16]")}
    graph = optimize_for_device(model, input_values=values, cache_dir=tmp_path / "cache")
    assert graph.input_shapes == {"x": [3, 8, 16, 16]}
    other = {"x": parse_value("x", "ones[3,8,16,16]")}
    assert optimize_for_device(model, input_values=other, cache_dir=tmp_path / "cache").path != (
        graph.path
    )


def test_external_weights_are_read_and_kept_beside_the_graph(tmp_path: Path) -> None:
    folder = tmp_path / "ext"
    folder.mkdir()
    model = helper.make_model(block_graph(), opset_imports=[helper.make_opsetid("", 17)])
    path = folder / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="ext.data", size_threshold=0)
    graph = optimize_for_device(path, cache_dir=tmp_path / "cache")
    assert (graph.path.parent / "optimized.onnx.data").is_file()
    inline = optimize_for_device(
        save_model(block_graph(), tmp_path / "inline.onnx"), cache_dir=tmp_path / "cache"
    )
    assert [_shapes(r) for r in graph.nodes] == [_shapes(r) for r in inline.nodes]


def test_a_corrupt_file_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07this is not a protobuf of a model" * 10)
    with pytest.raises(ModelError):
        optimize_for_device(bad, cache_dir=tmp_path / "cache")


def test_a_model_onnxruntime_refuses_is_one_line(tmp_path: Path) -> None:
    node = helper.make_node("NoSuchOp", ["x"], ["y"], domain="example.custom")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("example.custom", 1)]
    )
    path = tmp_path / "custom.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match=r"could not optimize custom\.onnx") as err:
        optimize_for_device(path, cache_dir=tmp_path / "cache")
    assert "\n" not in err.value.message and "[ONNXRuntimeError]" not in err.value.message


def test_a_missing_provider_or_level_is_a_usage_error(block: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="NoSuchExecutionProvider") as err:
        optimize_for_device(block, provider="NoSuchExecutionProvider", cache_dir=tmp_path)
    assert "CPUExecutionProvider" in str(err.value.hint)
    with pytest.raises(UsageError, match="optimisation level"):
        optimize_for_device(block, opt_level="max", cache_dir=tmp_path)


def test_a_device_on_another_onnxruntime_gets_a_note(block: Path, tmp_path: Path) -> None:
    graph = optimize_for_device(block, device_onnxruntime="1.17.0", cache_dir=tmp_path)
    (note,) = graph.notes
    assert "1.17.0" in note and ort.__version__ in note and "pip install" in note
    same = optimize_for_device(block, device_onnxruntime=ort.__version__, cache_dir=tmp_path)
    assert same.notes == [] and same.path == graph.path
