"""`flopgap-agent bench` with `--input-value`/`--input-file`, on a model whose `If` depends on a
scalar sample-rate input: each value runs its own branch, the document says which values ran,
and a missing or ill-fitting value is one line that says what to write.

The branch taken is read from the per-op profile pass (`--profile-ops`), whose node names are
the graph's: `then_mm0`/`then_mm1` run only for sr=16000, `else_mm` only for any other rate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from agent.engine.measure import MeasureSettings, measure
from agent.engine.options import settings_from_dict
from shared.input_values import parse_values, values_to_wire
from tests.conftest import Runner
from tests.control_flow_models import if_on_sample_rate

QUICK = [
    "--min-seconds", "0", "--min-iterations", "8", "--warmup", "1", "--warmup-seconds", "0",
    "--max-seconds", "5", "--no-power", "--idle-seconds", "0", "--threads", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def if_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cf") / "if_sr.onnx"
    if_on_sample_rate(path)
    return path


def _profiled_nodes(doc: dict[str, object]) -> set[str]:
    profile = doc["op_profile"]
    assert isinstance(profile, dict)
    return {node["name"] for node in profile["nodes"]}


@pytest.mark.parametrize(
    ("sr", "ran", "skipped"),
    [(16000, {"then_mm0", "then_mm1"}, {"else_mm"}), (8000, {"else_mm"}, {"then_mm0"})],
)
def test_each_value_runs_its_branch_and_is_recorded(
    agent_cli: Runner, if_model: Path, sr: int, ran: set[str], skipped: set[str]
) -> None:
    proc = agent_cli("bench", if_model, "--input-value", f"sr={sr}", "--profile-ops", "--json",
                     *QUICK)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    nodes = _profiled_nodes(doc)
    assert ran <= nodes and not skipped & nodes, nodes
    used = doc["model"]["inputs"]
    assert used["sr"] == {
        "type": "tensor(int64)", "shape": [], "dtype": "int64", "source": "literal",
        "value": str(sr), "value_shape": [],
    }  # fmt: skip
    assert used["x"]["source"] == "synthesized" and used["x"]["seed"] == 0
    assert used["x"]["shape"] == [1, 512] and used["x"]["dtype"] == "float32"
    assert doc["settings"]["input_values"]["sr"]["value"] == str(sr)


def test_input_file_feeds_real_data(agent_cli: Runner, if_model: Path, tmp_path: Path) -> None:
    data = np.arange(512, dtype=np.float32).reshape(1, 512) / 512
    np.save(tmp_path / "clip.npy", data)
    proc = agent_cli("bench", if_model, "--input-value", "sr=16000", "--input-file",
                     f"x={tmp_path / 'clip.npy'}", "--json", *QUICK)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    x = json.loads(proc.stdout)["model"]["inputs"]["x"]
    assert x["source"] == "file" and x["file"] == "clip.npy"
    assert x["sha256"] == __import__("hashlib").sha256(data.tobytes()).hexdigest()


def _one_line(proc: object, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr  # type: ignore[attr-defined]
    err = proc.stderr.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


def test_missing_scalar_value_is_refused(agent_cli: Runner, if_model: Path) -> None:
    _one_line(agent_cli("bench", if_model, *QUICK), "'sr'", "--input-value sr=")


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--input-value", "sr=16000.5"], ["'sr'", "int64", "16000.5", "whole number"]),
        (["--input-value", "sr=[16000,8000]"], ["'sr'", "scalar", "[2]", "single value"]),
        (["--input-value", "sr=16000", "--input-value", "rate=8000"],
         ["'rate'", "not an input", "x, sr"]),
        (["--input-value", "sr=16000", "--input-value", "x=zeros[1,256]"],
         ["'x'", "[1, 512]", "[1, 256]", "zeros[1,512]"]),
    ],
)  # fmt: skip
def test_bad_value_is_one_line(
    agent_cli: Runner, if_model: Path, flags: list[str], needles: list[str]
) -> None:
    _one_line(agent_cli("bench", if_model, *flags, *QUICK), *needles)


def test_wrong_shape_npy_is_one_line(agent_cli: Runner, if_model: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "short.npy", np.zeros((1, 256), np.float32))
    flags = ["--input-value", "sr=16000", "--input-file", f"x={tmp_path / 'short.npy'}"]
    _one_line(agent_cli("bench", if_model, *flags, *QUICK), "'x'", "[1, 512]", "[1, 256]", ".npy")


def _failing_else(path: Path) -> Path:
    """If(sr == 16000) then Identity(x) else Reshape(x, [3, 7]): the else branch cannot run."""
    then_g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["t"])], "then", [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)],
    )  # fmt: skip
    else_g = helper.make_graph(
        [helper.make_node("Reshape", ["x", "bad"], ["e"])], "else", [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)],
    )  # fmt: skip
    graph = helper.make_graph(
        [
            helper.make_node("Equal", ["sr", "k"], ["c"]),
            helper.make_node("If", ["c"], ["y"], name="If_0", then_branch=then_g,
                             else_branch=else_g),
        ],
        "failing_else",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4]),
         helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.array(16000, np.int64), "k"),
                     numpy_helper.from_array(np.array([3, 7], np.int64), "bad")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_failure_in_control_flow_points_at_input_values(agent_cli: Runner, tmp_path: Path) -> None:
    model = _failing_else(tmp_path / "failing_else.onnx")
    proc = agent_cli("bench", model, "--input-value", "sr=8000", *QUICK)
    assert proc.returncode == 4, proc.stderr
    assert "inference failed: If node 'If_0'" in proc.stderr
    assert "--input-value" in proc.stderr and "check the input shapes" not in proc.stderr


def test_job_settings_with_values_measure_the_same_branch(if_model: Path) -> None:
    """A job's settings (wire form) give the runner the values bench's flags give: the
    profiled pass of a job measured at sr=8000 runs the else branch."""
    wire = {"input_values": values_to_wire(parse_values(["sr=8000"]))}
    raw = {**MeasureSettings().as_dict(), **wire, "profile_ops": True, "power": False}
    raw |= {"min_iterations": 4, "min_seconds": 0.0, "warmup_runs": 1, "warmup_seconds": 0.0}
    settings = settings_from_dict(raw)
    assert settings.as_dict() == raw
    result = measure(if_model, settings)
    assert "else_mm" in _profiled_nodes(result.document)
    assert result.document["model"]["inputs"]["sr"]["value"] == "8000"
