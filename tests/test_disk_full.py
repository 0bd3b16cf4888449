"""A full disk under the database never crashes the collector (issue 15, item 4).

The store turns SQLITE_FULL into `StoreFull` (checked on a database capped with
`PRAGMA max_page_count`, which fails exactly like a full disk). End to end, a real collector
keeps its database on a small tmpfs that the test fills mid-campaign: the collector logs
"disk full" once, answers `status` with what is full and how much is free, refuses results
(the agent keeps them spooled and resends them, paced), and once the filler is removed the
campaign completes with exactly one result per job, without a restart.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from collector.server.disk import DiskState, withhold
from collector.store import Store
from collector.store.connection import StoreFull, is_full
from shared import protocol
from tests.conftest import REPO, matmul_graph, save_model
from tests.fleet_helpers import (
    campaign_status,
    start_agent,
    start_collector,
    wait_for_campaign,
    write_campaign,
)


def _capped(db: Path) -> Store:
    """A store whose file may not grow past its current size: every growth is SQLITE_FULL."""
    store = Store(db)
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count={pages}")
    return store


def _grow(store: Store, n: int) -> None:
    for i in range(n):
        store.upsert_agent(f"agent-{i}", {"cpu_model": "x" * 4000}, {})


def test_a_full_database_raises_store_full_and_leaves_no_transaction_open(tmp_path: Path) -> None:
    store = _capped(tmp_path / "db.sqlite")
    with pytest.raises(StoreFull) as info:
        _grow(store, 50)
    assert "full" in info.value.message and str(tmp_path) in info.value.message
    assert info.value.free_bytes is not None and info.value.hint
    assert not store.db.in_transaction
    store.db.execute("PRAGMA max_page_count=1000000")  # room again: the same connection writes
    _grow(store, 50)
    assert len(store.agents()) == 50 and store.integrity_ok()
    store.close()


def test_a_full_batch_is_rolled_back_whole_and_the_next_batch_commits(tmp_path: Path) -> None:
    store = _capped(tmp_path / "db.sqlite")
    with pytest.raises(StoreFull), store.batch():
        _grow(store, 50)
    assert not store.db.in_transaction and store.agents() == []
    store.db.execute("PRAGMA max_page_count=1000000")
    with store.batch():
        _grow(store, 3)
    assert len(store.agents()) == 3
    store.close()


def test_full_is_told_apart_from_other_errors() -> None:
    assert is_full(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_full(RuntimeError("database or disk is full"))


def test_a_rolled_back_batch_claims_no_write(tmp_path: Path) -> None:
    """Acks and CampaignAccepted become Reject(busy); a Job not started is not sent."""
    exc = StoreFull(tmp_path, 0, "OperationalError: database or disk is full")
    job = protocol.Job("j" * 32, "m", "a" * 64, {"threads": 1}, 10.0)
    replies = [(b"a", protocol.Ack("r" * 32)), (b"a", job), (b"c", protocol.Status({}))]
    replies.append((b"c", protocol.CampaignAccepted("c" * 32, 3)))
    kept = withhold(replies, exc)
    assert [type(m).__name__ for _, m in kept] == ["Reject", "Status", "Reject"]
    rejects = [m for _, m in kept if isinstance(m, protocol.Reject)]
    assert all(r.code == "busy" and "full" in r.reason for r in rejects)
    state = DiskState(tmp_path, retry_s=0.0, resume_free=0)
    assert state.failed(exc) and not state.failed(exc)  # said once
    assert state.document()["full"] and state.document()["free_bytes"] is not None
    assert state.may_commit()  # room and the retry is due: one batch may try
    state.resumed()
    assert not state.full and state.document()["error"] is None


# --- end to end: a real collector on a small filesystem the test fills -----------------------


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs (the test needs root or CAP_SYS_ADMIN to mount one; skipped otherwise)."""
    mount = tmp_path / "small-fs"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({proc.stderr.strip()}): run as root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(folder: Path) -> Path:
    """Write a filler file until the filesystem has no byte left."""
    filler = folder / "filler"
    chunk = b"\0" * (64 << 10)
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    while True:  # the last partial chunk
        try:
            with filler.open("ab", buffering=0) as handle:
                handle.write(b"\0" * 512)
        except OSError:
            return filler


def _check_store(db: Path, jobs: int) -> None:
    store = Store(db)
    try:
        assert store.integrity_ok()
        rows, results = store.jobs(), store.result_rows()
        assert len(rows) == jobs and all(j.state == "done" for j in rows), rows
        assert len(results) == jobs, f"{len(results)} results for {jobs} jobs"
        assert len({r.result_id for r in results}) == jobs, "a duplicate result"
        assert {r.job_id for r in results} == {j.job_id for j in rows}, "a lost job"
        for r in results:
            lat = store.latencies(r.result_id)
            assert lat.size == (r.document or {})["latency_ms"]["n"] and lat.dtype == np.int64
    finally:
        store.close()


def test_disk_full_mid_campaign_then_space_returns(tmp_path: Path, small_fs: Path) -> None:
    names = []
    for i, width in enumerate((32, 48, 64)):
        save_model(matmul_graph(batch=4, width=width), tmp_path / f"m{i}.onnx")
        names.append(f"m{i}.onnx")
    jobs = len(names) * 2
    db = small_fs / "results.sqlite"
    collector, endpoint = start_collector(db)
    agent = start_agent(endpoint, "disk-agent", tmp_path)  # its spool is not on the small fs
    try:
        collector.seen(r"agent disk-agent registered", 60)
        config = write_campaign(tmp_path, names, threads=[1, 2], name="disk")
        proc = subprocess.run([sys.executable, "-m", "collector", "campaign", "run", str(config),
                               "--collector", endpoint, "--detach"],
                              capture_output=True, text=True, timeout=60, cwd=REPO)  # fmt: skip
        assert proc.returncode == 0 and "accepted" in proc.stdout, proc.stderr
        collector.expect(r"result \w+: ", 120)  # one stored, the rest to come
        filler = _fill(small_fs)
        collector.expect(r"disk full: the disk under .* is full", 60)
        disk = campaign_status(endpoint, "disk")["disk"]  # it still serves, and says why
        assert disk["full"] and disk["folder"] == str(small_fs), disk
        assert disk["free_bytes"] < 1 << 20, disk
        agent.expect(r"collector is busy: not stored: the disk under", 120)  # a refused result
        assert campaign_status(endpoint, "disk")["campaigns"][0]["state"] == "running"
        filler.unlink()
        collector.expect(r"disk has room again", 60)
        done = wait_for_campaign(endpoint, "disk", timeout=180)
        assert done["jobs"]["done"] == jobs, done
        assert campaign_status(endpoint, "")["disk"]["full"] is False
        assert collector.proc.poll() is None, "the collector restarted or died"
        assert sum("disk full:" in line for line in collector.lines) == 1  # said once
    finally:
        agent.stop()
        collector.stop()
    _check_store(db, jobs)
