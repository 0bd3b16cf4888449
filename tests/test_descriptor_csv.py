"""The system description reaches the CSV: a Jetson in two power modes is two rows that say
so, and an error result (no document) takes its columns from the agent's stored descriptor."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from agent.board import device
from collector.export import DESCRIPTOR_COLUMNS, write_csv
from collector.store import Store
from collector.store.jobs import Failure
from tests.test_report_render import _document

SYSFS = Path(__file__).resolve().parent / "data" / "sysfs"
BOARDS = {"orin-maxn": "jetson-orin-nx-maxn", "orin-15w": "jetson-orin-nx-15w",
          "pi5": "rpi5-throttled", "vm": "x86-epyc-vm"}  # fmt: skip


def _export(tmp_path: Path) -> dict[str, dict[str, str]]:
    """One ok result per board (its document's device = describe(tree)), plus a failed job on
    the Pi; the CSV's rows by result id."""
    store = Store(tmp_path / "db.sqlite")
    store.add_campaign("c1", "fleet", {})
    for i, (agent, tree) in enumerate(BOARDS.items()):
        descriptor = device.describe(SYSFS / tree)
        store.upsert_agent(agent, descriptor, {})
        doc = _document(agent, "tiny", 1.0 + i)
        doc["device"] = {**descriptor, "hostname": f"{agent}-host"}
        store.add_jobs([(f"j{i}", "c1", agent, "tiny", "tiny", {}, 0, 1, 60.0)])
        store.record_result(f"j{i}", f"r-{agent}", agent, doc, np.ones(10))
    store.add_jobs([("jf", "c1", "pi5", "big", "big", {}, 0, 1, 60.0)])
    store.start_job("jf")
    store.fail_attempt("jf", Failure("r-failed", "pi5", "oom", "out of memory"))
    try:
        write_csv(store, tmp_path / "out.csv")
    finally:
        store.close()
    with (tmp_path / "out.csv").open(newline="") as handle:
        return {row["result_id"]: row for row in csv.DictReader(handle)}


def test_descriptor_columns_in_the_csv(tmp_path: Path) -> None:
    rows = _export(tmp_path)
    maxn, w15, pi, vm = (rows[f"r-{a}"] for a in BOARDS)
    assert (maxn["power_mode"], maxn["power_mode_id"], maxn["jetson_clocks"]) == ("MAXN", "0", "on")
    assert (w15["power_mode"], w15["power_mode_id"], w15["jetson_clocks"]) == ("15W", "2", "off")
    differ = {c for c in DESCRIPTOR_COLUMNS if maxn[c] != w15[c]}
    assert differ == {"power_mode", "power_mode_id", "jetson_clocks"}
    assert (maxn["l4t"], maxn["jetpack"], maxn["gpu"], maxn["dla"]) == ("35.4.1", "5.1.2",
                                                                         "ga10b", "2")  # fmt: skip
    assert maxn["isa"] == "asimd,asimdhp,fphp,asimddp"
    assert maxn["policy_governors"] == "schedutil:0-7"
    assert pi["throttled"] == "0x50005 now=under_voltage|throttled boot=under_voltage|throttled"
    assert pi["pi_firmware"] == "26826259 (2024/09/23 14:02:56)" and pi["power_mode"] == ""
    assert "avx512f" in vm["isa"].split(",") and vm["throttled"] == ""


def test_an_error_row_takes_the_description_from_the_agent(tmp_path: Path) -> None:
    failed = _export(tmp_path)["r-failed"]
    assert failed["status"] == "error"
    assert failed["throttled"].startswith("0x50005 now=") and failed["gpu"] == "v3d"
