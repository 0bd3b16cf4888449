"""The device lock: measurements on one board never overlap, whoever starts them.

Real processes throughout: `flopgap-agent bench` subprocesses sharing one lock file, a lock
held by this test with flock, a holder killed while it holds the lock, and agent jobs through
the real fork server (agent.jobs.worker).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.board import config, service
from agent.board.device_lock import LOCK_ENV, DeviceBusyError, DeviceLock
from agent.jobs import worker
from tests.conftest import FAST, REPO, Runner

DEADLINE_S = 60.0


@pytest.fixture
def lock_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "device.lock"
    monkeypatch.setenv(LOCK_ENV, str(path))
    return path


def _bench(model: Path, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent", "bench", str(model), "--json", *FAST, *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def _note(path: Path) -> dict[str, Any] | None:
    try:
        note = json.loads(path.read_text() or "null")
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) else None


def _wait_for_holder(path: Path, pid: int, proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The lock's note once it names `pid` (a state, polled with a deadline)."""
    deadline = time.monotonic() + DEADLINE_S
    pause = threading.Event()
    while time.monotonic() < deadline:
        note = _note(path)
        if note is not None and note.get("pid") == pid:
            return note
        assert proc.poll() is None, f"the holder exited early: {proc.communicate()}"
        pause.wait(0.02)
    raise AssertionError(f"{path} never named pid {pid}: {_note(path)}")


@pytest.fixture
def held(lock_path: Path) -> Iterator[int]:
    """The lock held by this test process, with a note naming it."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    note = {"pid": os.getpid(), "command": "test holder", "since": "2024-01-01T10:00:00+00:00"}
    os.pwrite(fd, json.dumps(note).encode(), 0)
    yield os.getpid()
    os.close(fd)


def test_two_benches_on_one_device_take_turns(tiny_model: Path, lock_path: Path) -> None:
    first = _bench(tiny_model, "--min-seconds", "2.5")  # spans > 2 s: an overlap would show
    note = _wait_for_holder(lock_path, first.pid, first)
    assert note["command"] == f"flopgap-agent bench {tiny_model.name}"
    assert "T" in note["since"] and note["since"].endswith("+00:00")
    second = _bench(tiny_model)
    out1, err1 = first.communicate(timeout=DEADLINE_S)
    out2, err2 = second.communicate(timeout=DEADLINE_S)
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    a, b = json.loads(out1), json.loads(out2)
    assert a["started_at"] <= a["finished_at"] <= b["started_at"] <= b["finished_at"]
    assert (
        f"waiting for the device: flopgap-agent bench {tiny_model.name} (pid {first.pid}) "
        "has been measuring since "
    ) in err2
    assert err2.count("waiting for the device") == 1  # said once, not per retry
    assert "waiting" not in err1
    assert _note(lock_path) is None  # the last holder cleared its note


def test_a_busy_device_times_out_with_one_clear_line(tiny_model: Path, held: int) -> None:
    proc = _bench(tiny_model, "--lock-timeout", "0.5")
    out, err = proc.communicate(timeout=DEADLINE_S)
    assert proc.returncode == 7, err
    assert out == ""  # nothing was measured
    assert f"waiting for the device: test holder (pid {held}) has been measuring since" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("flopgap-agent: error: the device is still busy after 0.5 s: ")
    assert f"test holder (pid {held})" in last and "--lock-timeout" in last


def test_a_holder_that_dies_releases_the_device(lock_path: Path) -> None:
    code = (
        "import sys; from agent.board.device_lock import DeviceLock\n"
        "DeviceLock('doomed').acquire(5)\nprint('held', flush=True)\nsys.stdin.read()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=REPO)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    with pytest.raises(DeviceBusyError, match=rf"doomed \(pid {proc.pid}\)"):
        DeviceLock("test").acquire(0)
    proc.send_signal(signal.SIGKILL)  # no chance to release: the kernel drops the flock
    proc.wait(DEADLINE_S)
    lock = DeviceLock("test")
    assert lock.acquire(0) == pytest.approx(0, abs=0.5)
    assert (_note(lock_path) or {}).get("command") == "test"
    lock.release()


def test_the_lock_file_is_shared_with_other_users(lock_path: Path) -> None:
    with DeviceLock("test") as lock:
        lock.acquire(0)
        assert lock_path.stat().st_mode & 0o777 == 0o666


JOB: dict[str, Any] = {"min_seconds": 0, "min_iterations": 60, "warmup_runs": 2,
                       "warmup_seconds": 0, "max_seconds": 20}  # fmt: skip


@pytest.fixture
def fork_server() -> Iterator[None]:
    worker.start_server()
    yield
    worker.stop_server()


def test_an_agent_job_holds_the_device_while_it_measures(
    tiny_model: Path, lock_path: Path, fork_server: None
) -> None:
    outcome: list[worker.JobOutcome] = []
    settings = {**JOB, "min_seconds": 2}

    def measure() -> None:
        outcome.append(worker.run_job(tiny_model, settings, "tiny", DEADLINE_S, holder="a: 1"))

    job = threading.Thread(target=measure)
    job.start()
    try:
        deadline = time.monotonic() + DEADLINE_S
        while (_note(lock_path) or {}).get("command") != "a: 1":
            assert time.monotonic() < deadline and job.is_alive(), outcome
            threading.Event().wait(0.02)
        assert _note(lock_path) == {**(_note(lock_path) or {}), "pid": os.getpid()}
        with pytest.raises(DeviceBusyError, match=r"a: 1 \(pid \d+\) has been"):
            DeviceLock("test").acquire(0)
    finally:
        job.join(DEADLINE_S)
    assert outcome and outcome[0].ok, outcome
    assert outcome[0].document is not None
    doc = outcome[0].document
    assert doc["started_at"] <= doc["finished_at"]
    assert DeviceLock("test").acquire(0) >= 0  # released with the job


def test_an_agent_job_on_a_busy_device_is_device_busy(
    tiny_model: Path, held: int, fork_server: None
) -> None:
    seen: list[dict[str, Any]] = []
    out = worker.run_job(tiny_model, JOB, "tiny", 0.5, on_progress=seen.append)
    assert not out.ok and out.error_kind == "device_busy"
    assert out.error is not None and f"test holder (pid {held})" in out.error
    assert out.document is None
    assert [p["phase"] for p in seen] == ["waiting for the device"]
    assert "test holder" in seen[0]["note"]


def test_an_agent_whose_lock_cannot_be_opened_stops_at_start(agent_cli: Runner) -> None:
    r = agent_cli("run", "--collector", "tcp://127.0.0.1:9", "--device-lock", "/nonexistent/x.lock")
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "flopgap-agent: error: cannot open the device lock /nonexistent/x.lock: No such file or "
        f"directory -- set {LOCK_ENV} to a file every flopgap process on this board can open"
    )


def test_the_config_and_the_service_unit_know_the_lock(tmp_path: Path) -> None:
    settings = config.check({"device_lock": "locks/device.lock"}, tmp_path / "agent.toml")
    assert settings["device_lock"] == tmp_path / "locks" / "device.lock"
    unit = service.render_unit(Path("/venv/bin/flopgap-agent"), tmp_path / "agent.toml", "pi",
                               [tmp_path / "spool"], user_unit=False)  # fmt: skip
    assert "ReadWritePaths=-/run/lock" in unit.splitlines()  # outside the unit's PrivateTmp
