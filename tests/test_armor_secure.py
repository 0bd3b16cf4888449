"""Issue 15 (armor), the "secure" part: secure mode is the same product, the agent bounds its
thread counts by the board, and a wrong collector key is said once.

Each test reproduces its attack first: a profiled campaign under CURVE keys (item 7: the
agent's optimised-graph upload was refused as client-only, so no per-op rows), an agent with a
collector key that is not the collector's (item 8: a warning every 100 ms, forever), and a job
asking for more threads than the board has (item 10: the board held in "load" until the
timeout, or an internal error for 2**40). Real processes and sockets on 127.0.0.1.
"""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from collector.procs import Child
from collector.store import Store
from collector.zoo import write_zoo
from shared import keys
from tests.conftest import FAST, Runner, matmul_graph, save_model
from tests.fleet_helpers import start_agent, start_collector, wait_for_campaign, write_campaign
from tests.test_security import (
    client_keys,
    issue,
    start_keyed_agent,
    start_keyed_collector,
    submit,
    wait_done,
)

pytestmark = pytest.mark.integration

_POLL = threading.Event()  # never set: wait(t) is a bounded polling period


def test_a_profiled_campaign_under_curve_fills_the_operator_tables(
    tmp_path: Path, collector_cli: Runner
) -> None:
    """Item 7: the agent's ModelData (the graph ORT ran) is accepted from an agent key."""
    key_dir = tmp_path / "keys"
    assert collector_cli("keys", "init", key_dir).returncode == 0
    board = issue(key_dir, "agent", "board")
    zoo = write_zoo(tmp_path / "zoo", names=["convnet"])
    config = write_campaign(tmp_path, [f"zoo/{p.name}" for p in zoo.values()], threads=[1],
                            name="curve-ops", extra="profile_ops = true\n")  # fmt: skip
    db = tmp_path / "db.sqlite"
    peer = client_keys(key_dir)
    collector, endpoint = start_keyed_collector(db, key_dir)
    agent = start_keyed_agent(endpoint, "board", tmp_path, board, key_dir / "collector.key")
    try:
        collector.seen(r"agent board registered", 60)
        submit(endpoint, peer, config, tmp_path / "scratch")
        done = wait_done(endpoint, peer, "curve-ops", timeout=180)
    finally:
        agent.stop()
        assert collector.stop() == 0, collector.tail(20)
    assert done["jobs"]["done"] == 1, done
    refused = [line for line in agent.lines if "refused" in line]
    assert not refused, refused
    store = Store(db)
    try:
        rows = store.op_time_rows()
    finally:
        store.close()
    assert rows, "no op_times rows: the optimised graph was not joined"
    proc = collector_cli("report", "--db", db, "--include-invalid", "--csv-dir", tmp_path / "csv")
    assert proc.returncode in (0, 7), proc.stderr  # 7: some results invalid on a loaded box
    with (tmp_path / "csv" / "op_types.csv").open() as fh:
        op_types = list(csv.DictReader(fh))
    # ORT's names for the ops it ran (com.microsoft.nchwc.Conv after layout optimisation)
    assert [row for row in op_types if row["op_type"].rsplit(".")[-1] == "Conv"], op_types


def _agent_with_wrong_collector_key(tmp_path: Path, key_dir: Path) -> tuple[Child, Child]:
    """A CURVE collector, and an allowlisted agent that pins a key that is not the collector's."""
    board = issue(key_dir, "agent", "board")
    wrong = tmp_path / "not-the-collector.key"
    keys.create_pair(wrong, tmp_path / "not-the-collector.key_secret")
    collector, endpoint = start_keyed_collector(tmp_path / "db.sqlite", key_dir)
    return collector, start_keyed_agent(endpoint, "board", tmp_path, board, wrong)


def test_a_wrong_collector_key_is_said_once_and_reconnects_back_off(
    tmp_path: Path, collector_cli: Runner
) -> None:
    """Item 8: one clear line naming --collector-key and `flopgap keys list`, then quiet."""
    key_dir = tmp_path / "keys"
    assert collector_cli("keys", "init", key_dir).returncode == 0
    collector, agent = _agent_with_wrong_collector_key(tmp_path, key_dir)
    try:
        agent.expect(r"does not answer to the key in --collector-key", 30)
        # The backoff is visible: wait for the agent's own line of its third attempt (not a
        # sleep), then count what it said until then.
        agent.expect(r"still no secure handshake.*attempt 3\): retrying in 4 s", 30)
        lines = list(agent.lines)
    finally:
        agent.stop()
        assert collector.stop() == 0, collector.tail(20)
    clear = [line for line in lines if "does not answer to the key in --collector-key" in line]
    assert len(clear) == 1, clear
    assert "flopgap keys list" in clear[0]
    warnings = [line for line in lines if "WARNING" in line or "warning" in line]
    assert len(warnings) <= 3, warnings
    assert not [line for line in lines if "registered as" in line]
    # attempts 1 s then 2 s apart, where libzmq alone retried every 100 ms
    third = next(line for line in lines if "attempt 3" in line)
    assert _stamp(third) - _stamp(clear[0]) >= 2.5, (clear[0], third)


def _stamp(line: str) -> float:
    """Seconds since the epoch of a log line (`2026-01-02 10:00:00,123 agent ...`)."""
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


CORES = psutil.cpu_count(logical=True) or 1


@pytest.mark.parametrize(
    ("flag", "value"), [("--threads", 10_000), ("--threads", 2**40), ("--inter-threads", CORES + 1)]
)
def test_bench_refuses_more_threads_than_logical_cores(
    agent_cli: Runner, tiny_model: Path, flag: str, value: int
) -> None:
    """Item 10, locally: one line naming the cap and exit 2, before any session is made."""
    r = agent_cli("bench", tiny_model, flag, str(value), *FAST)
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""  # nothing measured
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flopgap-agent: error: "), r.stderr
    assert f"this board's {CORES} logical cores" in lines[0]
    assert "internal error" not in lines[0] and "Traceback" not in r.stderr


def test_a_job_asking_more_threads_than_the_board_has_fails_at_once(tmp_path: Path) -> None:
    """Item 10 on the fleet: the job ends as a usage_error naming the cap, long before its
    timeout, and the board is free for the campaign's next job."""
    save_model(matmul_graph(width=32), tmp_path / "m.onnx")
    config = write_campaign(tmp_path, ["m.onnx"], threads=[10_000, 2**40, 1], name="greedy")
    db = tmp_path / "db.sqlite"
    collector, endpoint = start_collector(db)
    agent = start_agent(endpoint, "board", tmp_path)
    try:
        collector.seen(r"agent board registered", 60)
        proc = subprocess.run([sys.executable, "-m", "collector", "campaign", "run", str(config),
                               "--collector", endpoint, "--detach"],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        wait_for_campaign(endpoint, "greedy", timeout=60)  # far below the 600 s timeout
    finally:
        agent.stop()
        assert collector.stop() == 0, collector.tail(20)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT r.status, r.error_kind, r.error, r.document_json FROM results r"
        ).fetchall()
    failed = [row for row in rows if row[0] != "ok"]
    assert len(failed) == 2 and len(rows) == 3, rows
    for _, kind, error, _ in failed:
        assert kind == "usage_error", error
        assert f"this board's {CORES} logical cores" in error and "at most threads" in error
