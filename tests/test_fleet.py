"""Fleet campaigns with real processes on 127.0.0.1: crashes and restarts lose nothing."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.board.device_lock import DeviceLock
from collector.store import Store
from tests.conftest import REPO, matmul_graph, save_model
from tests.fleet_helpers import start_agent, start_collector, wait_for_campaign, write_campaign

pytestmark = pytest.mark.integration


def _models(folder: Path) -> list[str]:
    names = []
    for i, width in enumerate((32, 64, 96)):
        save_model(matmul_graph(batch=4, width=width), folder / f"m{i}.onnx")
        names.append(f"m{i}.onnx")
    return names


def _submit(config: Path, endpoint: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "collector", "campaign", "run", str(config),
                           "--collector", endpoint, "--detach"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "accepted" in proc.stdout


def test_campaign_survives_agent_and_collector_sigkill(tmp_path: Path) -> None:
    config = write_campaign(tmp_path, _models(tmp_path), threads=[1, 2])
    db = tmp_path / "fleet.sqlite"
    collector, endpoint = start_collector(db)
    names = [f"agent-{i}" for i in range(4)]
    agents = {n: start_agent(endpoint, n, tmp_path) for n in names}
    try:
        for n in names:
            collector.seen(rf"agent {n} registered", 60)
        _submit(config, endpoint)
        # SIGKILL one agent in the middle of a job, then bring it back (as systemd would).
        agents["agent-0"].expect(r"job \w+: measuring", 60)
        agents["agent-0"].kill()
        agents["agent-0"] = start_agent(endpoint, "agent-0", tmp_path)
        # SIGKILL the collector mid-campaign and restart it on the same database and port.
        collector.expect(r"result \w+: ", 60)
        collector.kill()
        collector, endpoint2 = start_collector(db, bind=endpoint)
        assert endpoint2 == endpoint
        done = wait_for_campaign(endpoint, "fleet", timeout=240)
    finally:
        for child in agents.values():
            child.stop()
        collector.stop()
    expected_jobs = 4 * 3 * 2
    assert done["jobs"]["done"] + done["jobs"]["failed"] == expected_jobs
    store = Store(db)
    try:
        assert store.integrity_ok()
        jobs = store.jobs()
        results = store.result_rows()
        assert len(jobs) == expected_jobs
        assert len(results) == len(jobs)  # exactly one result per job: none lost, none doubled
        assert len({r.result_id for r in results}) == len(results)
        assert {r.job_id for r in results} == {j.job_id for j in jobs}
        for r in results:
            assert r.status == "ok", r.error
            n = (r.document or {})["latency_ms"]["n"]
            latencies = store.latencies(r.result_id)
            assert latencies.size == n and latencies.dtype == np.int64 and (latencies > 0).all()
    finally:
        store.close()


def test_crashing_model_gives_an_error_result_and_the_agent_serves_on(tmp_path: Path) -> None:
    save_model(matmul_graph(width=32), tmp_path / "crashy.onnx")
    save_model(matmul_graph(width=48), tmp_path / "fine.onnx")
    config = write_campaign(tmp_path, ["crashy.onnx", "fine.onnx"], threads=[1],
                            extra="", name="crash")  # fmt: skip
    text = config.read_text().replace('name = "crash"', 'name = "crash"\nretries = 0')
    config.write_text(text)
    db = tmp_path / "crash.sqlite"
    collector, endpoint = start_collector(db)
    agent = start_agent(endpoint, "solo", tmp_path,
                        env={"FLOPGAP_TEST_HOOK": "segv@crashy"})  # fmt: skip
    try:
        collector.expect(r"agent solo registered", 60)
        _submit(config, endpoint)
        wait_for_campaign(endpoint, "crash", timeout=120)
        assert agent.proc.poll() is None, "the agent must survive its job's crash"
    finally:
        agent.stop()
        collector.stop()
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute(
            "SELECT j.model_name, r.status || ':' || COALESCE(r.error_kind, '') "
            "FROM results r JOIN jobs j USING (job_id)"))  # fmt: skip
    assert rows["fine"] == "ok:"
    assert rows["crashy"] == "error:crash"


def test_model_is_sent_once_and_a_corrupt_cache_file_is_fetched_again(tmp_path: Path) -> None:
    save_model(matmul_graph(width=40), tmp_path / "one.onnx")
    db = tmp_path / "cache.sqlite"
    collector, endpoint = start_collector(db)
    agent = start_agent(endpoint, "cachey", tmp_path)
    try:
        collector.expect(r"agent cachey registered", 60)
        first = write_campaign(tmp_path, ["one.onnx"], threads=[1, 2], name="first")
        _submit(first, endpoint)
        wait_for_campaign(endpoint, "first", timeout=120)
        sent = [line for line in collector.lines if "sent model" in line]
        assert len(sent) == 1, sent  # two jobs, one transfer
        cached = list((tmp_path / "cachey" / "cache").rglob("*.onnx"))
        assert len(cached) == 1
        cached[0].write_bytes(b"corrupted" + cached[0].read_bytes()[9:])
        second = write_campaign(tmp_path, ["one.onnx"], threads=[1], name="second")
        _submit(second, endpoint)
        wait_for_campaign(endpoint, "second", timeout=120)
        sent = [line for line in collector.lines if "sent model" in line]
        assert len(sent) == 2, sent  # the corrupted copy was detected by hash and refetched
    finally:
        agent.stop()
        collector.stop()


def test_late_agent_picks_up_work_and_a_frozen_agent_is_requeued(tmp_path: Path) -> None:
    """An agent joining mid-campaign gets its jobs; one that stops answering (SIGSTOP) in the
    middle of a job is marked missing, its job goes back to the queue, and when it wakes its
    work completes.

    "In the middle of a job" is a state the test holds, not a moment it hopes to hit: the test
    takes the device lock first, so the agent's job waits for it (and says so) until the test
    lets go. Freezing the agent after a "measuring" line raced the job's end."""
    save_model(matmul_graph(width=48), tmp_path / "w.onnx")
    config = write_campaign(tmp_path, ["w.onnx"], threads=[1, 2], name="late")
    db = tmp_path / "late.sqlite"
    collector, endpoint = start_collector(db, heartbeat=0.3)
    device = DeviceLock("the test, holding a job mid-way")
    device.acquire(timeout_s=60)
    early = start_agent(endpoint, "early", tmp_path)
    late = None
    try:
        collector.seen(r"agent early registered", 60)
        _submit(config, endpoint)
        early.expect(r"waiting for the device", 60)  # mid-job, and it cannot finish
        early.proc.send_signal(signal.SIGSTOP)  # frozen: no heartbeats
        collector.seen(r"agent early missed its heartbeats", 30)
        collector.seen(r"job \w+ will be retried on early \(agent_missing", 10)
        late = start_agent(endpoint, "late", tmp_path)
        collector.seen(r"agent late registered", 60)  # while the campaign still runs
        device.release()
        early.proc.send_signal(signal.SIGCONT)
        done = wait_for_campaign(endpoint, "late", timeout=120)
    finally:
        device.release()
        early.proc.send_signal(signal.SIGCONT)
        early.stop()
        if late is not None:
            late.stop()
        collector.stop()
    assert done["per_agent"]["late"]["done"] == 2  # joined after submission, still served
    assert done["per_agent"]["early"]["done"] == 2
    store = Store(db)
    try:
        assert len(store.result_rows()) == len(store.jobs()) == 4
        assert store.calibration_rows() == []  # --no-calibrate (the test default) holds
        errors = [json.loads(j.errors_json) for j in store.jobs(agent_id="early")]
        assert any("agent_missing" in e for errs in errors for e in errs)
    finally:
        store.close()


def test_a_setting_no_agent_can_satisfy_is_refused_at_submit(tmp_path: Path) -> None:
    save_model(matmul_graph(width=16), tmp_path / "s.onnx")
    config = write_campaign(tmp_path, ["s.onnx"], threads=[1], name="cuda")
    config.write_text(config.read_text().replace(
        "threads = [1]", 'threads = [1]\nproviders = ["CUDAExecutionProvider"]'))  # fmt: skip
    collector, endpoint = start_collector(tmp_path / "cuda.sqlite")
    agent = start_agent(endpoint, "cpu-only", tmp_path)
    try:
        collector.seen(r"agent cpu-only registered", 60)
        proc = subprocess.run([sys.executable, "-m", "collector", "campaign", "run", str(config),
                               "--collector", endpoint], capture_output=True, text=True,
                              timeout=60, cwd=REPO)  # fmt: skip
    finally:
        agent.stop()
        collector.stop()
    assert proc.returncode == 2
    assert "CUDAExecutionProvider" in proc.stderr and "cpu-only" in proc.stderr
    assert "Traceback" not in proc.stderr
    store = Store(tmp_path / "cuda.sqlite")
    try:
        assert store.campaigns() == [] and store.jobs() == []  # nothing was queued
    finally:
        store.close()
