"""retry_invalid: a result judged invalid is kept, its job measured again, and the export shows
every attempt with the one that is the job's result marked."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, matmul_graph, save_model
from tests.fleet_helpers import start_agent, start_collector, wait_for_campaign
from tests.test_fleet import _submit

pytestmark = pytest.mark.integration

# Five steady-state runs cannot bound a p50 at 99 % confidence (that takes seven): every
# result of this campaign is invalid, whatever the machine, so each attempt is predictable.
CAMPAIGN = """name = "redo"
models = ["r.onnx"]
retries = 0
retry_invalid = 1
[matrix]
threads = [1]
[targets]
agents = ["*"]
[measure]
min_iterations = 5
min_seconds = 0
warmup_runs = 1
warmup_seconds = 0
"""


def test_an_invalid_result_is_measured_again_and_both_attempts_are_exported(
    tmp_path: Path,
) -> None:
    save_model(matmul_graph(width=16), tmp_path / "r.onnx")
    config = tmp_path / "redo.toml"
    config.write_text(CAMPAIGN)
    db = tmp_path / "redo.sqlite"
    collector, endpoint = start_collector(db)
    agent = start_agent(endpoint, "redo-agent", tmp_path)
    try:
        collector.seen(r"agent redo-agent registered", 60)
        _submit(config, endpoint)
        collector.seen(r"INVALID: [^)]*too few runs[^)]*\); measuring it again later", 120)
        done = wait_for_campaign(endpoint, "redo", timeout=120)
    finally:
        agent.stop()
        collector.stop()
    assert done["jobs"]["done"] == 1
    assert done["results"]["invalid"] == 1 and done["results"]["valid"] == 0
    assert done["results"]["invalid_reasons"]["too few runs"] == 1
    out = tmp_path / "redo.csv"
    proc = subprocess.run([sys.executable, "-m", "collector", "export", "--db", str(db),
                           "--campaign", "redo", "--csv", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "1 result: 0 valid, 1 invalid (" in proc.stdout and "too few runs 1" in proc.stdout
    assert "1 invalid attempt(s) measured again" in proc.stdout
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and {r["job_id"] for r in rows} == {rows[0]["job_id"]}
    by_attempt = {r["attempt"]: r for r in rows}
    assert by_attempt["1"]["job_result"] == "0" and by_attempt["2"]["job_result"] == "1"
    assert all(r["valid"] == "False" and "needs" in r["invalid_reasons"] for r in rows)
    assert all(r["finished_at"] >= r["started_at"] for r in rows)
