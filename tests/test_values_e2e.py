"""Input values end to end: a campaign gives one model two sample rates; a real agent runs
each branch, and the collector counts each result at the value it ran with."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from collector.store import Store
from tests.conftest import Runner
from tests.control_flow_models import ELSE_MACS, THEN_MACS, if_on_sample_rate
from tests.fleet_helpers import run_campaign_on_one_agent, write_campaign

pytestmark = pytest.mark.integration


def test_a_campaign_value_picks_the_branch_run_and_the_branch_counted(
    tmp_path: Path, collector_cli: Runner
) -> None:
    if_on_sample_rate(tmp_path / "vad16k.onnx")
    if_on_sample_rate(tmp_path / "vad8k.onnx")  # the same bytes under another name
    config = write_campaign(
        tmp_path, ["vad16k.onnx", "vad8k.onnx"], threads=[1], name="values",
        extra="[inputs.vad16k]\nsr = { value = 16000 }\n[inputs.vad8k]\nsr = { value = 8000 }\n",
    )  # fmt: skip
    db = run_campaign_on_one_agent(tmp_path, config, "values-agent", collector_cli)

    store = Store(db)
    try:
        docs = {r.model_name: json.loads(r.document_json or "{}") for r in store.result_rows()}
    finally:
        store.close()
    assert set(docs) == {"vad16k", "vad8k"}
    for name, sr in (("vad16k", "16000"), ("vad8k", "8000")):
        fed = docs[name]["model"]["inputs"]["sr"]
        assert fed["source"] == "literal" and fed["value"] == sr
        assert docs[name]["model"]["inputs"]["x"]["source"] == "synthesized"

    out = tmp_path / "values.csv"
    proc = collector_cli("export", "--db", db, "--csv", out, "--campaign", "values")
    assert proc.returncode == 0, proc.stderr
    with out.open() as handle:
        rows = {r["model_name"]: r for r in csv.DictReader(handle)}
    assert rows["vad16k"]["flops_error"] == "" and rows["vad8k"]["flops_error"] == ""
    assert int(rows["vad16k"]["macs"]) == THEN_MACS
    assert int(rows["vad8k"]["macs"]) == ELSE_MACS
