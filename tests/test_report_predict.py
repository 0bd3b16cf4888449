"""Predictions in the report, from a real store: one profiled campaign of a smoke sweep and three
zoo models on a real collector and agent (once per module), then ``build_report`` and
``flopgap report --predict``. Checks plumbing, not accuracy: the measure settings are quick and
lenient so that a loaded machine still gives valid results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from collector.predict.families import is_sweep, model_family
from collector.report import build_report, render_text
from collector.report.predicted import KERNEL_COLUMNS
from collector.report.ranked import PredictRequest
from collector.store import Store
from collector.zoo import write_zoo
from tests.conftest import REPO
from tests.fleet_helpers import run_campaign_on_one_agent

pytestmark = pytest.mark.integration

ZOO = ("convnet", "dwsep", "mlp")
MEASURE = (
    "[measure]\nwarmup_runs = 3\nwarmup_seconds = 0.05\nmin_iterations = 20\nmin_seconds = 0.2\n"
    "max_seconds = 3\nrepeats = 1\nmax_foreign_cpu_cores = 2.0\nmax_cv = 1.0\n"
)


def _cli(*args: str | Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)  # fmt: skip


def _campaign(folder: Path, name: str, models: list[str], profile: bool) -> Path:
    config = folder / f"{name}.toml"
    config.write_text(
        f'name = "{name}"\nmodels = {json.dumps(models)}\nretry_invalid = 0\n'
        '[matrix]\nthreads = [1]\n[targets]\nagents = ["*"]\n'
        + MEASURE
        + f"profile_ops = {'true' if profile else 'false'}\n"
    )
    return config


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("profiled")
    models = ["sweep:smoke", *(f"zoo:{z}" for z in ZOO)]
    config = _campaign(root, "predict", models, profile=True)
    return run_campaign_on_one_agent(root, config, "pred-agent", _cli, timeout=180)


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bare")
    config = _campaign(root, "bare", ["zoo:mlp", "zoo:convnet"], profile=False)
    return run_campaign_on_one_agent(root, config, "bare-agent", _cli, timeout=120)


@pytest.fixture(scope="module")
def report_json(profiled: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("out")
    unmeasured = write_zoo(out, names=["transformer"])["transformer"]
    doc = out / "report.json"
    proc = _cli("report", "--db", profiled, "--predict", unmeasured, "--json", doc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Predicted (not measured)" in proc.stdout
    return {"doc": json.loads(doc.read_text()), "text": proc.stdout}


def test_measured_zoo_models_get_a_kernel_prediction_and_sweep_kernels_none(
    report_json: dict,
) -> None:
    rows = report_json["doc"]["tables"]["models"]
    by_model = {r["model"]: r for r in rows}
    for name in ZOO:
        row = by_model[name]
        assert row["kernel_predicted_ms"] is not None and row["kernel_predicted_ms"] > 0, row
        lo, hi = row["kernel_lo_ms"], row["kernel_hi_ms"]
        assert lo <= row["kernel_predicted_ms"] <= hi, row
        assert row["kernel_error"] == pytest.approx(row["kernel_predicted_ms"] / row["p50_ms"] - 1)
    sweeps = [r for r in rows if is_sweep(model_family(r["model"]))]
    assert sweeps, "the smoke sweep measured nothing valid"
    assert all(r[c] is None for r in sweeps for c in KERNEL_COLUMNS[:4]), sweeps[0]


def test_each_zoo_prediction_came_from_a_fold_that_never_saw_its_family(
    report_json: dict,
) -> None:
    folds = {f["held_out"]: f for f in report_json["doc"]["kernel_folds"]}
    for name in ZOO:
        fold = folds[model_family(name)]
        assert model_family(name) not in fold["trained_on"], fold
        assert fold["samples"] > 0 and any(is_sweep(f) for f in fold["trained_on"]), fold


def test_predict_ranks_an_unmeasured_model_on_every_device(report_json: dict) -> None:
    doc = report_json["doc"]
    predicted = doc["tables"]["predicted"]
    devices = {r["device"] for r in doc["tables"]["models"]}
    assert {r["device"] for r in predicted} == devices
    for row in predicted:
        assert row["model"] == "transformer" and row["rank"] == 1, row
        assert row["lo_ms"] <= row["predicted_ms"] <= row["hi_ms"], row
    assert "transformer" in report_json["text"].split("Predicted (not measured)")[1]


def test_two_unmeasured_models_rank_fastest_first(profiled: Path, tmp_path: Path) -> None:
    written = write_zoo(tmp_path, names=["transformer", "mlp"])
    store = Store(profiled)
    try:
        report = build_report(
            store, kernel_predictions=False,
            predict=[PredictRequest(p) for p in written.values()],
        )  # fmt: skip
    finally:
        store.close()
    assert report.predicted is not None and report.kernel_folds is None
    ranked = report.predicted.sort_values("rank")
    assert list(ranked["rank"]) == [1, 2]
    assert list(ranked["predicted_ms"]) == sorted(ranked["predicted_ms"])
    assert "kernel_predicted_ms" not in report.models


def test_a_store_without_profiles_says_so_once_and_still_reports(bare: Path) -> None:
    store = Store(bare)
    try:
        report = build_report(store)
    finally:
        store.close()
    lines = [m for m in report.missing if "no per-op profiles" in m]
    assert len(lines) == 1, report.missing
    assert "flopgap sweep run --agents bare-agent --name predict" in lines[0]
    assert report.models["kernel_predicted_ms"].isna().all()
    assert report.kernel_folds == []
    assert "no per-op profiles" in render_text(report)


def test_predict_of_a_missing_file_is_a_usage_error(bare: Path, tmp_path: Path) -> None:
    proc = _cli("report", "--db", bare, "--predict", tmp_path / "nope.onnx")
    assert proc.returncode != 0
    assert "nope.onnx" in proc.stderr and "Traceback" not in proc.stderr
