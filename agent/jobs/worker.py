"""Run one measurement job in a fresh child process: a crash, an exhausted memory or a hang
becomes an error result with its cause, and the agent lives on.

Design, and why:

* **A fresh process per job** (as pyperf does): nothing leaks from one model into the next,
  not ORT's arenas, not a corrupted heap, not a thread a custom op left behind.
* **forked from a fork server** (agent.jobs.server) started once with ``python -m``, which has
  imported numpy, onnxruntime and agent.engine.measure and frozen its GC. A child starts in a few ms
  instead of the ~300 ms of a cold ``python -m``, and the agent (which runs ZeroMQ threads) is
  never forked. multiprocessing's "forkserver" context was tried first and measured: on
  CPython 3.11 it never preloads ``__main__`` (it looks for a ``main_path`` key that spawn's
  preparation data does not have), so every child re-imports the agent's entry script and all
  that script imports (+100 ms per job under pytest); it also pickles its arguments.
* **Forked from the agent itself when that is safe** (`start_server(fork=True)`, which
  `flopgap-agent run` calls first thing): the server then shares, copy-on-write, what the
  agent has already loaded. agent.jobs.fork_server says when it is safe, and why OpenBLAS runs on
  one thread; agent.jobs.server says which threads the server has and why forking it is sound.
* **Under the device lock** (agent.board.device_lock), taken in the agent before the job
  goes to the server and held until the child is reaped: the collector gives an agent one job
  at a time, the lock keeps other agents and hand-run benches on this board out as well.
* **Bytes only, never pickles.** The job goes to the server as JSON with the write end of a
  fresh pipe (SCM_RIGHTS); the child answers on that pipe with length-prefixed JSON frames and
  one raw int64 frame of latencies (agent.jobs.frames). The server reports the child's pid
  and exit code on its control socket. Every wait is a bounded `select`.
* **stdout and stderr go to a file** in a per-job temporary folder, so the last lines of a
  crashed child (faulthandler's stack, ORT's abort message) can be quoted in the error.
* **Each child leads its own process group**: a timeout or cancel sends SIGTERM to the group,
  then SIGKILL after a grace. If the agent dies, the server kills the child and exits.

What can and cannot be told apart: MemoryError in the child, ORT's "Failed to allocate memory",
and an abort whose output mentions bad_alloc are reported as "out_of_memory". A SIGKILL flopgap
did not send is most often the kernel's OOM killer, but an unprivileged process cannot prove it,
so it is a "crash" naming SIGKILL with that hint. `memory_limit_bytes` sets RLIMIT_AS, which
counts address space, not RSS: onnxruntime, thread stacks (8 MiB each) and glibc malloc arenas
(64 MiB per thread) reserve far more than they touch, so set it well above the expected RSS.

Where each part lives: this module is the public API (one job at a time, one server);
agent.jobs.fork_server the agent's handle on the server; agent.jobs.supervisor the agent's side of
one job (reading, timeouts, signals); agent.jobs.outcome how a job's end is worded;
agent.jobs.frames the framing both sides share; agent.jobs.server the server process;
agent.jobs.child what runs in the forked child.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.board.device_lock import DeviceBusyError, DeviceLock, LockWaitCancelled
from agent.jobs.child import TEST_HOOK_ENV
from agent.jobs.fork_server import ForkServer, ServerInfo, WorkerError, can_fork
from agent.jobs.outcome import JobOutcome, classify_exit, log_tail
from agent.jobs.supervisor import JobSupervisor, ProgressCallback
from shared.errors import UsageError

__all__ = [
    "JobOutcome",
    "ProgressCallback",
    "ServerInfo",
    "WorkerError",
    "classify_exit",
    "run_job",
    "start_server",
    "stop_server",
]

log = logging.getLogger("flopgap.agent.worker")

_START_TIMEOUT_S = 120.0
_lock = threading.Lock()  # held for a whole job: measurements never overlap
_server: ForkServer | None = None


def start_server(timeout_s: float = _START_TIMEOUT_S, fork: bool = False) -> ServerInfo:
    """Start the fork server unless it runs, and wait until its imports are done.

    Call it at agent start-up, never during a measurement: the imports would steal CPU from it.
    run_job calls it too, so a server that died is replaced before the next job.
    `fork`: fork the server from this process if it has one thread (agent.jobs.fork_server), so the
    two share what is already loaded; this also freezes this process's garbage collector
    (gc.freeze), so its collections do not write to, and unshare, the pages the server inherited.
    """
    if not _lock.acquire(blocking=False):  # a job is running, so the server is up
        running = _server
        if running is not None:
            return running.info
        _lock.acquire()
    try:
        return _ensure_server(timeout_s, fork).info
    finally:
        _lock.release()


def stop_server(timeout_s: float = 5.0) -> None:
    """Stop the fork server, after the running job if any (it also stops with the agent)."""
    global _server
    with _lock:
        if _server is not None:
            _server.close(timeout_s)
            _server = None


def _ensure_server(timeout_s: float, fork: bool = False) -> ForkServer:
    global _server
    if _server is not None and not _server.alive():
        log.warning("worker fork server %d had died; starting a new one", _server.pid)
        _server.close()
        _server = None
    if _server is None:
        _server = ForkServer(timeout_s, fork and can_fork())
    return _server


def run_job(
    model_path: Path,
    settings: dict[str, Any],
    model_name: str,
    timeout_s: float,
    on_progress: ProgressCallback | None = None,
    memory_limit_bytes: int | None = None,
    cancel: threading.Event | None = None,
    holder: str | None = None,
) -> JobOutcome:
    """Measure one model in a fresh child; every failure of the job is a JobOutcome.

    First it takes the device lock (agent.board.device_lock), so no other measurement on this
    board, from another agent or a hand-run `bench`, overlaps it; `holder` is how the lock
    names this job to a waiter. The wait is bounded by `timeout_s` too, reported as progress
    of phase "waiting for the device", and counts in no timed window: the job's own timeout
    starts once the lock is held. A device still busy then is error_kind "device_busy".

    `timeout_s` bounds the job from the fork on. `on_progress` gets {"phase", "iterations",
    "elapsed_s", "median_ms", "mean_ms"} about once a second; median_ms is the running median
    of the last 1,000 steady-state runs (None before the steady state) and mean_ms is
    elapsed / iterations. Setting `cancel` stops
    the child within ~0.2 s (error_kind "cancelled"). Raises WorkerError only when the fork
    server cannot start or another job is running: measurements must never overlap.
    """
    if not _lock.acquire(blocking=False):
        raise WorkerError("a job is already running", hint="measurements must never overlap")
    device = DeviceLock(holder or f"flopgap-agent job ({model_name})")
    refused = _take_device(device, timeout_s, on_progress, cancel)
    if refused is not None:
        _lock.release()
        return refused
    try:
        server = _ensure_server(_START_TIMEOUT_S)
        job = {
            "model_path": str(model_path),
            "settings": settings,
            "model_name": model_name,
            "cwd": os.getcwd(),
            "memory_limit_bytes": memory_limit_bytes,
            "test_hook": os.environ.get(TEST_HOOK_ENV) or None,  # TEST-ONLY
        }
        return _run_locked(server, job, timeout_s, on_progress, cancel)
    finally:
        device.release()
        _lock.release()


_LOCK_FAILURES: dict[type[Exception], str] = {
    DeviceBusyError: "device_busy",
    LockWaitCancelled: "cancelled",
    UsageError: "usage_error",  # the lock file cannot be opened
}


def _take_device(
    device: DeviceLock,
    timeout_s: float,
    on_progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> JobOutcome | None:
    """Hold the device lock within `timeout_s`: None once held, else the job's outcome."""
    t0 = time.monotonic()
    try:
        device.acquire(timeout_s, _waiting(on_progress, t0), cancel)
    except tuple(_LOCK_FAILURES) as exc:
        kind = _LOCK_FAILURES[type(exc)]
        return JobOutcome(False, None, None, kind, str(exc), time.monotonic() - t0, None)
    return None


def _waiting(on_progress: ProgressCallback | None, t0: float) -> Callable[[str], None]:
    """What a job does when the device is busy: log it once, and tell the collector."""

    def say(line: str) -> None:
        log.warning("%s", line)
        if on_progress is not None:
            waited = time.monotonic() - t0
            on_progress({"phase": "waiting for the device", "iterations": 0,
                         "elapsed_s": waited, "median_ms": None, "mean_ms": None,
                         "note": line})  # fmt: skip

    return say


def _run_locked(
    server: ForkServer,
    job: dict[str, Any],
    timeout_s: float,
    on_progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> JobOutcome:
    global _server
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="flopgap-job-") as tmp:
        log_path = Path(tmp) / "child.log"
        try:
            spec = json.dumps({**job, "log_path": str(log_path)}).encode()
        except (TypeError, ValueError) as exc:
            error = f"settings are not plain JSON: {exc}"
            return JobOutcome(False, None, None, "usage_error", error, time.monotonic() - t0, None)
        child = JobSupervisor(server, on_progress)
        child.run(spec, t0 + timeout_s, cancel)
        if child.server_lost and child.pid is None:  # it died between jobs: once more
            log.warning("worker fork server %d is gone; starting a new one", server.pid)
            server.close()
            _server = server = ForkServer(_START_TIMEOUT_S)
            child = JobSupervisor(server, on_progress)
            child.run(spec, time.monotonic() + timeout_s, cancel)
        if child.server_lost:
            server.close()
            _server = None
        return child.outcome(timeout_s, log_tail(log_path), time.monotonic() - t0)
