"""A real collector and a real agent, as subprocesses, on a random 127.0.0.1 port."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from collector.export import COLUMNS
from collector.store import JobState, ResultStatus, Store
from tests.conftest import Runner
from tests.fleet_helpers import start_agent, start_collector, write_campaign

pytestmark = pytest.mark.integration


def test_agent_measures_jobs_and_collector_exports_csv(
    tmp_path: Path, tiny_model: Path, runtime_failure_model: Path, collector_cli: Runner
) -> None:
    db = tmp_path / "results.sqlite"
    config = write_campaign(tmp_path, ["tiny.onnx", "runtime_fail.onnx"], threads=[1],
                            name="it", extra="")  # fmt: skip
    config.write_text(config.read_text().replace('name = "it"', 'name = "it"\nretries = 0'))
    collector, endpoint = start_collector(db, calibrate=True)
    agent = start_agent(endpoint, "it-agent", tmp_path)
    try:
        collector.expect(r"agent it-agent registered", 30)
        proc = collector_cli("campaign", "run", config, "--collector", endpoint, timeout=120)
        assert proc.returncode == 1, proc.stderr  # one job failed: the exit code says so
        assert "complete" in proc.stdout and "1 failed" in proc.stdout
        assert agent.proc.poll() is None, "the agent must keep serving after a failed job"
    finally:
        assert agent.stop() == 0, agent.tail(20)
        collector.stop()

    store = Store(db)
    try:
        rows = {r.model_name: r for r in store.result_rows()}
        assert set(rows) == {"tiny", "runtime_fail"}
        ok, failed = rows["tiny"], rows["runtime_fail"]
        assert ok.status is ResultStatus.OK and failed.status is ResultStatus.ERROR
        assert failed.error_kind == "measurement_error" and "Reshape" in (failed.error or "")
        latencies = store.latencies(ok.result_id)
        assert latencies.dtype == np.int64 and latencies.size >= 64 and (latencies > 0).all()
        assert {j.state for j in store.jobs(agent_id="it-agent")} == {
            JobState.DONE,
            JobState.FAILED,
        }
        asked = json.loads(ok.document_json or "{}")["calibration"]  # on the first job
        assert asked["peak_gflops"] > 0
        calibration = store.calibration_rows()  # kept only when valid (a busy box voids it)
        assert len(calibration) == (1 if asked["valid"] else 0)
    finally:
        store.close()

    out = tmp_path / "out.csv"
    proc = collector_cli("export", "--db", db, "--csv", out, "--campaign", "it")
    assert proc.returncode == 0, proc.stderr
    with out.open() as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        table = {r["model_name"]: r for r in reader}
    assert table["tiny"]["status"] == "ok" and float(table["tiny"]["p50_ms"]) > 0
    assert int(table["tiny"]["n"]) == latencies.size
    assert table["runtime_fail"]["status"] == "error" and table["runtime_fail"]["p50_ms"] == ""
    # The FLOPs join: MatMul [4,64]x[64,64] then Relu over [4,64], counted by the collector.
    tiny = table["tiny"]
    assert int(tiny["macs"]) == 4 * 64 * 64
    assert int(tiny["flops"]) == 2 * 4 * 64 * 64 + 4 * 64
    achieved = int(tiny["flops"]) / (float(tiny["p50_ms"]) * 1e6)
    assert float(tiny["achieved_gflops"]) == pytest.approx(achieved)
    meta = json.loads(out.with_name(out.name + ".meta.json").read_text())
    assert meta["columns"] == list(COLUMNS) and "flops" in meta["flops_convention"]
    wide = tmp_path / "wide.csv"
    proc = collector_cli("export", "--db", db, "--csv", wide, "--wide", "--parquet",
                         tmp_path / "long.parquet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "it-agent" in wide.read_text().splitlines()[0]
    assert (tmp_path / "wide_gflops.csv").exists() and (tmp_path / "long.parquet").stat().st_size


def test_non_loopback_bind_without_keys_is_refused(collector_cli: Runner, tmp_path: Path) -> None:
    proc = collector_cli("serve", "--bind", "tcp://0.0.0.0:0", "--db", tmp_path / "x.sqlite")
    assert proc.returncode == 2
    assert "without CURVE keys" in proc.stderr and "Traceback" not in proc.stderr


def test_export_of_missing_db_says_so(collector_cli: Runner, tmp_path: Path) -> None:
    proc = collector_cli("export", "--db", tmp_path / "none.sqlite", "--csv", tmp_path / "o.csv")
    assert proc.returncode == 2 and "no database" in proc.stderr


def test_power_columns_give_joules_per_inference_and_per_gflop() -> None:
    from collector.export import POWER_COLUMNS, power_columns

    power = {"source": "rapl", "energy_j_per_inference": 0.002,
             "net_energy_j_per_inference": 0.0015, "idle_w": 3.0}  # fmt: skip
    row = power_columns(power, flops=4_000_000_000)
    assert row["j_per_gflop"] == pytest.approx(0.0005)
    assert row["power_source"] == "rapl" and row["idle_w"] == 3.0
    assert power_columns(None, 10) == dict.fromkeys(POWER_COLUMNS)  # missing, never 0
    assert power_columns(power, None)["j_per_gflop"] is None
