"""The new settings through a whole campaign: TOML, the wire, a real agent, the CSV.

A real collector and a real agent subprocess on 127.0.0.1 run a campaign that sets a session
config entry, a provider list, cold runs and a concurrency sweep; `flopgap export --csv` must
tell the two runs apart by their columns.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from collector.export import COLUMNS, DOCUMENT_COLUMNS
from tests.conftest import Runner
from tests.fleet_helpers import run_campaign_on_one_agent, write_campaign

pytestmark = pytest.mark.integration

EXTRA = """cold_runs = 2
session_config = { "session.intra_op.allow_spinning" = "0" }
providers = [{ name = "CPUExecutionProvider", options = {} }]
"""


def test_campaign_settings_reach_the_csv(
    tmp_path: Path, tiny_model: Path, collector_cli: Runner
) -> None:
    config = write_campaign(tmp_path, ["tiny.onnx"], threads=[1], name="engine", extra=EXTRA)
    config.write_text(
        config.read_text().replace("threads = [1]", "threads = [1]\nconcurrency = [1, 2]")
    )
    db = run_campaign_on_one_agent(tmp_path, config, "engine-agent", collector_cli, timeout=240)
    out = tmp_path / "out.csv"
    proc = collector_cli("export", "--db", db, "--csv", out, "--campaign", "engine")
    assert proc.returncode == 0, proc.stderr
    with out.open() as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = sorted(reader, key=lambda r: r["concurrency"])
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    assert [r["concurrency"] for r in rows] == ["1", "2"]
    for row in rows:
        assert row["providers"] == "CPUExecutionProvider" and row["provider_options"] == ""
        assert row["session_config"] == "session.intra_op.allow_spinning=0"
        assert row["sessions"] == "1" and float(row["inferences_per_s"]) > 0
        assert row["cold_runs"] == "2" and row["page_cache"] == "warm"
        assert float(row["cold_load_p50_ms"]) <= float(row["cold_load_max_ms"])
        assert float(row["cold_first_inference_p90_ms"]) > 0


def _doc(settings: dict[str, Any]) -> dict[str, Any]:
    return {"settings": settings}


def test_provider_columns_read_old_and_new_results() -> None:
    """A result stored before provider lists has `provider` alone and no new sections."""
    old = _doc({"provider": "CPUExecutionProvider"})
    assert DOCUMENT_COLUMNS["providers"](old) == "CPUExecutionProvider"
    assert DOCUMENT_COLUMNS["provider_options"](old) == ""
    assert DOCUMENT_COLUMNS["session_config"](old) == ""
    assert DOCUMENT_COLUMNS["concurrency"](old) == 1
    assert DOCUMENT_COLUMNS["inferences_per_s"](old) is None
    assert DOCUMENT_COLUMNS["cold_load_p50_ms"](old) is None
    listed = _doc({"provider": "XnnpackExecutionProvider", "providers": [
        {"name": "XnnpackExecutionProvider", "options": {"intra_op_num_threads": "2"}},
        {"name": "CPUExecutionProvider", "options": {}},
    ], "session_config": {"b": "2", "a": "1"}})  # fmt: skip
    assert DOCUMENT_COLUMNS["providers"](listed) == "XnnpackExecutionProvider,CPUExecutionProvider"
    assert DOCUMENT_COLUMNS["provider_options"](listed) == (
        '{"XnnpackExecutionProvider":{"intra_op_num_threads":"2"}}'
    )
    assert DOCUMENT_COLUMNS["session_config"](listed) == "a=1;b=2"
