"""The report's answer end to end: one profiled campaign of the zoo, from a real collector and
a real agent, then ``flopgap report --json``. Every op type that takes time has bytes (NCHWc
and fused nodes included), and every flagged model's finding names the operators that make it
slower or faster than its FLOPs predict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collector.report import build_report
from collector.report.culprits import NO_PROFILE
from collector.store import Store
from collector.zoo import write_zoo
from tests.conftest import Runner
from tests.fleet_helpers import run_campaign_on_one_agent, write_campaign

pytestmark = pytest.mark.integration

# The lowest threshold the CLI takes: on four models some residual is always beyond it.
THRESHOLD = 1.01


def _busy(rows: list[dict[str, Any]], share: float = 0.01) -> list[dict[str, Any]]:
    return [r for r in rows if (r["time_share"] or 0) > share]


def test_a_profiled_campaign_answers_which_ops_cost_each_model(
    tmp_path: Path, collector_cli: Runner
) -> None:
    models = write_zoo(tmp_path)
    config = write_campaign(
        tmp_path, [p.name for p in models.values()], threads=[1], name="answer",
        extra="profile_ops = true\n",
    )  # fmt: skip
    db = run_campaign_on_one_agent(
        tmp_path, config, "answer-agent", collector_cli, calibrate=True, timeout=90
    )

    out = tmp_path / "report.json"
    proc = collector_cli(
        "report", "--db", db, "--json", out, "--include-invalid", "--threshold", THRESHOLD
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    tables = doc["tables"]

    op_types = {r["op_type"] for r in tables["op_types"]}
    assert any("nchwc" in op or "Fused" in op for op in op_types), op_types  # ORT rewrote
    for table in ("op_types", "model_ops"):
        busy = _busy(tables[table])
        assert busy, f"{table} is empty"
        assert [r["op_type"] for r in busy if r["bytes"] is None] == [], table
    profiled = {r["model"] for r in tables["model_ops"]}
    assert profiled == set(models)

    flagged = [r for r in tables["models"] if r["flag"]]
    assert flagged, "no model beyond the lowest threshold"
    for row in flagged:
        named = row["culprits"]
        assert named and NO_PROFILE not in named, row
        finding = next(f for f in doc["findings"] if f.startswith(f"{row['model']} is "))
        assert finding.endswith(": " + ", ".join(named))
        assert " % of time for " in named[0] and named[0].endswith(" of FLOPs"), named
    assert {(c["device"], c["model"]) for c in doc["culprits"]} == {
        (r["device"], r["model"]) for r in flagged
    }

    store = Store(db)  # the same answer in process, from the store the CLI read
    try:
        report = build_report(store, "answer", threshold=THRESHOLD, include_invalid=True)
    finally:
        store.close()
    assert set(report.culprits) == {(r["device"], r["model"]) for r in flagged}

    # No row is labelled bound by a memory roof it beats: its achieved bandwidth (bytes moved
    # per second) is at most the roof it names, DRAM's for "memory (DRAM)". A board whose
    # calibration came out invalid (a loaded box) has no roofs, and then no bound at all.
    calibration = {(c["agent_id"], c["threads"]): c for c in tables["calibration"]}
    placed = [r for r in tables["models"] if r.get("bound")]
    assert bool(placed) == bool(calibration), (placed, calibration)
    for row in placed:
        achieved_gbs = row["bytes"] / (row["p50_ms"] * 1e6)
        if row["bound"].startswith("memory"):
            assert achieved_gbs <= row["roof_bandwidth_gbs"] * (1 + 1e-9), row
        if row["bound"] == "memory (DRAM)":
            assert achieved_gbs <= row["bandwidth_gbs"] * (1 + 1e-9), row
        assert row["slowdown"] >= 1 or row["bound"] == "above every roof", row
