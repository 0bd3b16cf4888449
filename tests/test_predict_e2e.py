"""`flopgap predict` on a store a real collector and agent filled: the documented JSON, a
kernel family with no training data named, leave-one-family-out never scoring a model with a
predictor that saw its family, and the stored predictor retrained when new results arrive.

The campaign's validity limits are loose on purpose: these tests check what flows where, not
how accurate predictions are on a loaded CI machine (docs/PREDICT.md has the accuracy figures
and how to reproduce them).
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from collector.predict import sweep_errors
from collector.predict.model import FOLDS_SLOT
from collector.store import Store
from collector.sweep.named import named_samples
from collector.zoo import write_zoo
from tests.conftest import Runner, _runner
from tests.fleet_helpers import run_campaign_on_one_agent, write_campaign

pytestmark = pytest.mark.integration

AGENT = "predict-agent"
LOOSE = "profile_ops = true\nmax_cv = 1.0\nmax_foreign_cpu_cores = 2.0\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One profiled campaign: every kernel of sweep:smoke and three zoo models, at 1 thread."""
    root = tmp_path_factory.mktemp("predict")
    zoo = write_zoo(root)
    models = ["sweep:smoke", *(zoo[n].name for n in ("convnet", "dwsep", "mlp"))]
    config = write_campaign(root, models, threads=[1], name="kernels", extra=LOOSE)
    return run_campaign_on_one_agent(root, config, AGENT, _runner("collector"), timeout=240)


def _lrn_model(path: Path) -> Path:
    """A model with an op no training sample has (LRN) beside one it has (Relu)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 28, 28])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 28, 28])
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("LRN", ["r"], ["y"], name="lrn", size=5)]  # fmt: skip
    graph = helper.make_graph(nodes, "lrn", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _predict(cli: Runner, db: Path, *args: object) -> dict:
    proc = cli("predict", *args, "--device", AGENT, "--db", db, "--json", timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(json.loads(proc.stdout))


def test_a_prediction_has_the_documented_json_and_names_a_family_it_never_saw(
    store: Path, tmp_path: Path, collector_cli: Runner
) -> None:
    out = _predict(collector_cli, store, _lrn_model(tmp_path / "lrn.onnx"))
    for key in ("model", "device", "predicted_ms", "interval_ms", "flops_only_ms", "kernels",
                "predictor"):  # fmt: skip
        assert key in out, key
    lo, hi = out["interval_ms"]
    assert 0 < lo <= out["predicted_ms"] <= hi
    assert {"version", "samples", "trained_at"} <= set(out["predictor"])
    assert out["predictor"]["samples"] > 0
    ops = {k["op_type"]: k for k in out["kernels"]}
    assert {"node", "op_type", "predicted_ms"} <= set(ops["LRN"])
    assert ops["LRN"]["basis"] == "pooled"
    pooled = sorted({k["op_type"] for k in out["kernels"] if k["basis"] == "pooled"})
    assert "LRN" in pooled and [m["op_type"] for m in out["missing"]] == pooled
    assert sum(k["predicted_ms"] for k in out["kernels"]) == pytest.approx(out["kernel_sum_ms"])


def test_evaluation_scores_each_model_with_a_predictor_blind_to_its_family(
    store: Path, collector_cli: Runner
) -> None:
    out = _predict(collector_cli, store, "--evaluate")
    scored = {m["model"]: m for m in out["models"]}
    assert set(scored) == {"convnet", "dwsep", "mlp"}  # sweep kernels are not whole models
    folds = {f["held_out"]: f for f in out["folds"]}
    for model in scored.values():
        fold = folds[model["family"]]
        assert model["family"] not in fold["trained_on"]
        assert any(f.startswith("sweep:") for f in fold["trained_on"])
        assert model["predicted_ms"] is not None, model
    assert out["summary"]["kernel"]["models"] == 3
    only_sweeps = _predict(collector_cli, store, "--evaluate", "--train-on", "sweeps")
    for fold in only_sweeps["folds"]:
        assert all(f.startswith("sweep:") for f in fold["trained_on"]), fold


def test_the_stored_predictor_is_reused_then_retrained_when_results_arrive(
    store: Path, tmp_path: Path, collector_cli: Runner
) -> None:
    model = _lrn_model(tmp_path / "lrn.onnx")
    first = _predict(collector_cli, store, model)["predictor"]
    assert _predict(collector_cli, store, model)["predictor"]["version"] == first["version"]
    zoo = write_zoo(tmp_path)
    config = write_campaign(tmp_path, [zoo["transformer"].name], threads=[1], name="more",
                            extra=LOOSE)  # fmt: skip
    run_campaign_on_one_agent(store.parent, config, AGENT, collector_cli, timeout=240)
    again = _predict(collector_cli, store, model)["predictor"]
    assert again["version"] == first["version"] + 1
    assert again["samples"] > first["samples"]
    opened = Store(store)
    try:
        rows = [r for r in opened.predictor_rows() if not r.device_key.endswith(FOLDS_SLOT)]
        versions = [r.version for r in rows]
    finally:
        opened.close()
    assert versions == list(range(1, len(versions) + 1)), versions  # the device's own, in order


def test_sweep_errors_score_every_measured_kernel(store: Path) -> None:
    samples = named_samples("smoke")
    errors = sweep_errors(store, [AGENT], 1, samples)
    assert errors and set(errors) <= {s.id for s in samples}
    assert all(e >= 0 for e in errors.values())


def test_an_unknown_device_lists_the_ones_that_can_be_predicted(
    store: Path, tmp_path: Path, collector_cli: Runner
) -> None:
    proc = collector_cli("predict", _lrn_model(tmp_path / "m.onnx"), "--device", "nowhere",
                         "--db", store)  # fmt: skip
    assert proc.returncode == 2
    assert "nowhere" in proc.stderr and AGENT in proc.stderr
