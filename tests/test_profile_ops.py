"""agent.engine.profile_ops: the per-node profiling pass and its pure profile parser.

The parser is checked on profiles written by a real onnxruntime run inside the test, on the
committed samples in tests/data/profiles (older ORT output kept readable), and on broken input.
No timing thresholds: only that times exist, are non-negative and are positive for a conv.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from agent.engine.profile_ops import OVERHEAD_NOTE, parse_profile, profile_ops, read_events
from agent.engine.session import SessionSettings
from shared.errors import UsageError
from shared.hashing import file_sha256
from tests.conftest import REPO, save_model

SAMPLES = REPO / "tests" / "data" / "profiles"
CONVNET_SHAPE = {"x": (1, 3, 32, 32)}


def convnet_graph() -> onnx.GraphProto:
    """Conv+BN+Relu (fused by ORT), a depthwise conv, MatMul+Add+Sigmoid (fused to a Gemm),
    and an unnamed Softmax, at 1x3x32x32."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int, positive: bool = False) -> onnx.TensorProto:
        data = rng.standard_normal(shape).astype(np.float32)
        return numpy_helper.from_array(np.abs(data) + 0.5 if positive else data, name)

    node = helper.make_node
    nodes = [
        node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        node("BatchNormalization", ["c1", "s", "bb", "m", "v"], ["bn"], name="bn1"),
        node("Relu", ["bn"], ["r1"], name="relu1"),
        node("Conv", ["r1", "wd"], ["d1"], name="dw", pads=[1, 1, 1, 1], group=16),
        node("GlobalAveragePool", ["d1"], ["g"], name="gap"),
        node("Flatten", ["g"], ["f"], name="flat"),
        node("MatMul", ["f", "wm"], ["mm_out"], name="mm"),
        node("Add", ["mm_out", "ba"], ["a"], name="add"),
        node("Sigmoid", ["a"], ["sg"], name="sig"),
        node("Softmax", ["sg"], ["y"]),  # unnamed on purpose: ORT profiles it as Softmax_9
    ]
    weights = [
        weight("w1", 16, 3, 3, 3),
        weight("b1", 16),
        weight("s", 16),
        weight("bb", 16),
        weight("m", 16),
        weight("v", 16, positive=True),
        weight("wd", 16, 1, 3, 3),
        weight("wm", 16, 10),
        weight("ba", 10),
    ]
    return helper.make_graph(
        nodes,
        "convnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        weights,
    )


def convnet_model(path: Path) -> Path:
    """Write convnet_graph() to `path`."""
    return save_model(convnet_graph(), path)


def _real_profile(model: Path, tmp_path: Path, runs: int) -> Path:
    """Profile `runs` inferences straight through onnxruntime, as a user's own script would."""
    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp_path / "raw")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED  # no NCHWc
    session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    x = np.ones(CONVNET_SHAPE["x"], dtype=np.float32)
    for _ in range(runs):
        session.run(None, {"x": x})
    return Path(session.end_profiling())


def test_parse_profile_of_a_real_onnxruntime_run(tmp_path: Path) -> None:
    profile = _real_profile(convnet_model(tmp_path / "convnet.onnx"), tmp_path, runs=4)
    nodes = parse_profile(read_events(profile), skip_runs=1)
    assert nodes, "no kernel events parsed"
    assert all(n["calls"] == 3 for n in nodes)  # one call per node per kept run
    assert all(n["kernel_time_us"] >= 0 and math.isfinite(n["kernel_time_us"]) for n in nodes)
    assert all(n["provider"] == "CPUExecutionProvider" for n in nodes)
    by_name = {n["name"]: n for n in nodes}
    assert by_name["conv1"]["op_type"] == "FusedConv"  # Conv+BN+Relu, fused by ORT
    assert by_name["conv1"]["kernel_time_us"] > 0
    assert by_name["conv1"]["output_shapes"] == [[1, 16, 32, 32]]
    assert "bn1" not in by_name and "relu1" not in by_name
    assert "Softmax_9" in by_name  # ORT's name for the unnamed node: <OpType>_<node index>
    assert parse_profile(json.loads(profile.read_text()), skip_runs=1) == nodes


def test_committed_samples_parse_and_name_nodes_of_their_optimized_graph() -> None:
    samples = sorted(SAMPLES.glob("*.profile.json"))
    assert samples, "tests/data/profiles holds no sample"
    for sample in samples:
        nodes = parse_profile(read_events(sample), skip_runs=1)
        optimized = sample.with_name(sample.name.replace("profile.json", "optimized.onnx"))
        graph = onnx.load(str(optimized)).graph
        named = {n.name for n in graph.node if n.name}
        unnamed = {n.op_type for n in graph.node if not n.name}
        assert nodes and all(n["calls"] == 3 for n in nodes), sample.name
        for node in nodes:  # ORT calls an unnamed node <OpType>_<node index>
            assert node["name"] in named or node["name"].rsplit("_", 1)[0] in unnamed


def test_bad_events_are_skipped_never_fatal() -> None:
    good = {"cat": "Node", "name": "a_kernel_time", "ts": 10, "dur": 4, "args": {"op_name": "Add"}}
    events = [
        "not an event",
        None,
        {"cat": "Node", "name": "b_kernel_time", "ts": 1},  # no dur
        {"cat": "Node", "name": "c_kernel_time", "ts": 1, "dur": -3},
        {"cat": "Node", "name": "d_kernel_time", "ts": 1, "dur": float("nan")},
        {"cat": "Node", "name": "e_kernel_time", "ts": 1, "dur": True},
        {"cat": "Node", "name": "f_fence_before", "ts": 1, "dur": 1},
        {"cat": "Session", "name": "session_initialization", "ts": 0, "dur": 9},
        {"cat": "Node", "name": 7, "ts": 1, "dur": 1},
        {"cat": "Node", "name": "g_kernel_time", "ts": 1, "dur": 2, "args": "junk"},
        good,
        {**good, "args": {"op_name": 5, "input_type_shape": [{"float": ["x"]}]}},
    ]
    rows = {row["name"]: row for row in parse_profile(events)}
    assert set(rows) == {"a", "g"}
    assert rows["a"]["calls"] == 2 and rows["a"]["kernel_time_us"] == 4.0
    assert rows["a"]["op_type"] == "Add" and rows["a"]["input_shapes"] is None
    assert rows["g"]["op_type"] is None and rows["g"]["provider"] is None


def _kernel(name: str, ts: float, dur: float) -> dict[str, object]:
    return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur, "args": {}}


def test_runs_come_from_model_run_windows_and_warmups_are_dropped() -> None:
    events = []
    for run, dur in enumerate([100, 1, 3, 2]):  # the first (warm-up) run is slow
        start = run * 1000
        events += [_kernel("a", start + 1, dur), _kernel("a", start + 5, dur)]  # twice a run
        events.append({"cat": "Session", "name": "model_run", "ts": start, "dur": 500})
    events.append(_kernel("a", 9000, 999))  # outside every run: dropped
    (row,) = parse_profile(events, skip_runs=1)
    assert row["calls"] == 6
    assert row["kernel_time_us"] == 4.0  # median of per-run sums 2, 6, 4


def test_without_run_windows_each_call_of_a_node_is_one_run() -> None:
    events = [_kernel("a", i, dur) for i, dur in enumerate([50, 1, 2, 9])]
    (row,) = parse_profile(events, skip_runs=1)
    assert row["calls"] == 3 and row["kernel_time_us"] == 2.0


def test_read_events_takes_split_and_truncated_files(tmp_path: Path) -> None:
    events = [_kernel("a", 1, 2), _kernel("b", 3, 4)]
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(events, indent=2))
    assert list(read_events(pretty)) == events
    one_line = tmp_path / "one_line.json"
    one_line.write_text(json.dumps(events))
    assert list(read_events(one_line)) == events
    cut = tmp_path / "cut.json"
    cut.write_text("[\n" + json.dumps(events[0]) + ",\n" + json.dumps(events[1])[:20])
    assert list(read_events(cut)) == events[:1]


def test_profile_ops_writes_the_optimized_graph_and_a_json_document(tmp_path: Path) -> None:
    model = convnet_model(tmp_path / "convnet.onnx")
    settings = SessionSettings(threads=1, opt_level="extended")
    result = profile_ops(model, settings, {}, tmp_path / "work", runs=5, warmup_runs=1)
    doc = json.loads(json.dumps(result.document))  # plain JSON
    assert doc["runs"] == 5 and doc["warmup_runs"] == 1
    assert doc["session"]["opt_level"] == "extended"
    assert doc["input_shapes"] == {"x": [1, 3, 32, 32]}
    assert doc["profile_overhead_note"] == OVERHEAD_NOTE
    assert result.optimized_model.parent == tmp_path / "work"
    assert doc["optimized_model_sha256"] == file_sha256(result.optimized_model)
    assert result.profile_file.parent == tmp_path / "work"
    optimized = {n.name: n.op_type for n in onnx.load(str(result.optimized_model)).graph.node}
    assert optimized["conv1"] == "FusedConv" and "bn1" not in optimized
    rows = {n["name"]: n for n in doc["nodes"]}
    assert all(n["calls"] == 5 and n["kernel_time_us"] >= 0 for n in doc["nodes"])
    assert rows["conv1"]["op_type"] == "FusedConv" and rows["conv1"]["kernel_time_us"] > 0
    assert doc["total_kernel_time_us"] == sum(n["kernel_time_us"] for n in doc["nodes"])
    assert doc["model_run_us"] > 0


def test_profile_ops_rejects_bad_requests(tmp_path: Path) -> None:
    model = convnet_model(tmp_path / "convnet.onnx")
    with pytest.raises(UsageError):
        profile_ops(model, SessionSettings(), {}, tmp_path, runs=0)
    with pytest.raises(UsageError):
        profile_ops(tmp_path / "missing.onnx", SessionSettings(), {}, tmp_path)


def test_profiling_and_calibration_modules_stay_light() -> None:
    probe = (
        "import sys, agent.engine.profile_ops, agent.engine.calibrate\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'onnx', 'pandas'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
