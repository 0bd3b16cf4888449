"""`flopgap-agent bench` end to end, in a subprocess, on real ONNX Runtime sessions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.result import RESULT_SCHEMA_VERSION, check_document
from tests.conftest import FAST, Runner


def test_bench_json_follows_the_schema(agent_cli: Runner, tiny_model: Path, tmp_path: Path) -> None:
    raw = tmp_path / "lat.npy"
    proc = agent_cli("bench", tiny_model, "--json", "--threads", "1", "--raw", raw, *FAST)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    check_document(doc)
    assert doc["schema_version"] == RESULT_SCHEMA_VERSION
    lat = doc["latency_ms"]
    assert lat["n"] >= 60
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert lat["median_ci95"][0] <= lat["p50"] <= lat["median_ci95"][1]
    assert doc["load_ms"] > 0 and doc["first_inference_ms"] > 0
    assert doc["warmup"]["n"] >= 2
    mem = doc["memory"]
    assert 0 < mem["rss_before_mb"] <= mem["peak_rss_mb"]
    assert "sampled every" in mem["method"]
    assert doc["settings"]["threads"] == 1 and doc["settings"]["opt_level"] == "all"
    assert doc["device"]["logical_cores"] >= 1 and len(doc["device"]["device_id"]) == 16
    assert doc["power"] is None and doc["power_unavailable_reason"]
    assert isinstance(doc["valid"], bool) and isinstance(doc["invalid_reasons"], list)
    saved = np.load(raw)
    assert saved.dtype == np.int64 and saved.size == lat["n"]
    assert np.median(saved) / 1e6 == pytest.approx(lat["p50"])


def test_bench_table_is_readable(agent_cli: Runner, tiny_model: Path) -> None:
    proc = agent_cli("bench", tiny_model, *FAST)
    assert proc.returncode == 0, proc.stderr
    for label in ("latency (ms)", "p50", "memory (MiB)", "verdict"):
        assert label in proc.stdout


def test_dynamic_dim_resolved_by_input_flag(agent_cli: Runner, dynamic_model: Path) -> None:
    proc = agent_cli("bench", dynamic_model, "--input", "x=3x64", "--json", *FAST)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["model"]["inputs"]["x"]["shape"] == [3, 64]


def _one_line_error(proc: object, *needles: str) -> None:
    assert proc.returncode != 0  # type: ignore[attr-defined]
    err = proc.stderr.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


def test_missing_file(agent_cli: Runner, tmp_path: Path) -> None:
    _one_line_error(agent_cli("bench", tmp_path / "nope.onnx"), "not found")


def test_not_onnx_and_truncated(agent_cli: Runner, tmp_path: Path, tiny_model: Path) -> None:
    text = tmp_path / "text.onnx"
    text.write_text("this is not a model")
    _one_line_error(agent_cli("bench", text), "not a valid ONNX model")
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(tiny_model.read_bytes()[:200])
    _one_line_error(agent_cli("bench", cut), "not a valid ONNX model")


def test_unknown_op(agent_cli: Runner, unknown_op_model: Path) -> None:
    _one_line_error(agent_cli("bench", unknown_op_model), "NoSuchOp")


def test_unresolved_dynamic_dim(agent_cli: Runner, dynamic_model: Path) -> None:
    _one_line_error(agent_cli("bench", dynamic_model), "'x'", "batch", "--input")


def test_unavailable_provider(agent_cli: Runner, tiny_model: Path) -> None:
    _one_line_error(
        agent_cli("bench", tiny_model, "--provider", "NoSuchProvider"),
        "NoSuchProvider",
        "CPUExecutionProvider",
    )


def test_inference_failure(agent_cli: Runner, runtime_failure_model: Path) -> None:
    _one_line_error(agent_cli("bench", runtime_failure_model, *FAST), "inference failed")


def test_debug_shows_traceback(agent_cli: Runner, tmp_path: Path) -> None:
    proc = agent_cli("--debug", "bench", tmp_path / "nope.onnx")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_model_with_types_numpy_lacks_is_measured(tmp_path: Path) -> None:
    """bfloat16 in and out: fed and fetched as OrtValues through run_with_ort_values."""
    from onnx import TensorProto, helper

    from agent.engine.measure import MeasureSettings, measure
    from agent.engine.timing import StopRule
    from tests.conftest import save_model

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "bf16",
        [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [8, 8])],
    )
    path = save_model(graph, tmp_path / "bf16.onnx")
    settings = MeasureSettings(warmup_runs=1, warmup_seconds=0, stop=StopRule(50, 0.0, 10.0))
    result = measure(path, settings)
    assert result.latencies_ns.size == 50
    assert result.document["model"]["inputs"]["x"]["type"] == "tensor(bfloat16)"
