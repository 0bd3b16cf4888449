"""Run one measurement job in a fresh child process: a crash, an exhausted memory or a hang
becomes an error result with its cause, and the agent lives on.

Design, and why:

* **A fresh process per job** (as pyperf does): nothing leaks from one model into the next,
  not ORT's arenas, not a corrupted heap, not a thread a custom op left behind.
* **forked from a fork server** (agent.worker_main) started once with ``python -m``, which has
  imported numpy, onnxruntime and agent.measure and frozen its GC. A child starts in a few ms
  instead of the ~300 ms of a cold ``python -m``, and the agent (which runs ZeroMQ threads) is
  never forked. multiprocessing's "forkserver" context was tried first and measured: on
  CPython 3.11 it never preloads ``__main__`` (it looks for a ``main_path`` key that spawn's
  preparation data does not have), so every child re-imports the agent's entry script and all
  that script imports (+100 ms per job under pytest); it also pickles its arguments.
* **Forked from the agent itself when that is safe** (`start_server(fork=True)`, which
  `flopgap-agent run` calls first thing, before any thread, ZeroMQ context or key exists): the
  server then shares, copy-on-write, the interpreter and numpy the agent has already loaded,
  instead of loading them a second time (measured on x86-64: the tree's PSS falls by ~15 MiB;
  bench/agent_footprint.py). The fork is refused, and ``python -m`` used instead, unless the
  process has exactly one native thread (/proc/self/task) and the kernel has pidfds (bounded
  waits on the child): it never forks a threaded process. A server that dies later is always
  replaced by ``python -m``, since the agent has threads by then.
* **OpenBLAS on one thread** (OPENBLAS_NUM_THREADS=1 unless set): nothing on the measuring
  side calls BLAS (ORT has its own thread pools; numpy only draws inputs and sorts latencies),
  so its idle pool was memory, and threads in the server, for nothing; and with it numpy
  starts no thread, which is what lets the agent import numpy before it forks the server.
* **Bytes only, never pickles.** The job goes to the server as JSON with the write end of a
  fresh pipe (SCM_RIGHTS); the child answers on that pipe with length-prefixed JSON frames and
  one raw int64 frame of latencies. The server reports the child's pid and exit code on its
  control socket. Every wait is a bounded `select`.
* **stdout and stderr go to a file** in a per-job temporary folder, so the last lines of a
  crashed child (faulthandler's stack, ORT's abort message) can be quoted in the error.
* **Threads in the server.** It is not strictly single-threaded: importing onnxruntime
  starts one idle thread sleeping in a timed wait (measured: no wake-up in seconds), and with
  OPENBLAS_NUM_THREADS set above 1, numpy starts OpenBLAS's pool (fork-safe: OpenBLAS parks it
  with pthread_atfork). A fork while ORT's thread briefly holds its lock could deadlock the
  child in onnxruntime; that is bounded like any hang (timeout, SIGKILL) and has not been seen.
  multiprocessing's forkserver preloading onnxruntime would share this; only a cold exec per
  job avoids it, at ~300 ms.
* **Each child leads its own process group**: a timeout or cancel sends SIGTERM to the group,
  then SIGKILL after a grace. If the agent dies, the server kills the child and exits.

What can and cannot be told apart: MemoryError in the child, ORT's "Failed to allocate memory",
and an abort whose output mentions bad_alloc are reported as "out_of_memory". A SIGKILL flopgap
did not send is most often the kernel's OOM killer, but an unprivileged process cannot prove it,
so it is a "crash" naming SIGKILL with that hint. `memory_limit_bytes` sets RLIMIT_AS, which
counts address space, not RSS: onnxruntime, thread stacks (8 MiB each) and glibc malloc arenas
(64 MiB per thread) reserve far more than they touch, so set it well above the expected RSS.
"""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent import worker_main
from shared.errors import FlopgapError

log = logging.getLogger("flopgap.agent.worker")

ProgressCallback = Callable[[dict[str, Any]], None]
_ROOT = str(Path(__file__).resolve().parents[1])  # the folder holding the agent package
_TERM_GRACE_S = 1.0  # SIGTERM, then SIGKILL after this
_EXIT_GRACE_S = 5.0  # a child must exit this soon after its result, or after SIGKILL
_CANCEL_POLL_S = 0.2
_TAIL_LINES = 12
_START_TIMEOUT_S = 120.0
_lock = threading.Lock()  # held for a whole job: measurements never overlap
_server: _ForkServer | None = None


class WorkerError(FlopgapError):
    """The worker machinery itself failed (not a job): no fork server, or jobs overlapping."""


@dataclass(frozen=True)
class JobOutcome:
    """What became of one job. Times in seconds, latencies in ns; error_kind None when ok."""

    ok: bool
    document: dict[str, Any] | None
    latencies_ns: np.ndarray | None
    error_kind: str | None
    error: str | None
    wall_s: float
    measure_s: float | None


@dataclass(frozen=True)
class ServerInfo:
    """The running fork server: pid, native thread count (see above), start-up seconds, whether
    it was forked from this process, and the device descriptor (agent.device) it computed."""

    pid: int
    threads: int | None
    start_s: float
    forked: bool
    device: dict[str, Any]


def start_server(timeout_s: float = _START_TIMEOUT_S, fork: bool = False) -> ServerInfo:
    """Start the fork server unless it runs, and wait until its imports are done.

    Call it at agent start-up, never during a measurement: the imports would steal CPU from it.
    run_job calls it too, so a server that died is replaced before the next job.
    `fork`: fork the server from this process if it has one thread (see above), so the two
    share what is already loaded; this also freezes this process's garbage collector (gc.freeze),
    so its collections do not write to, and unshare, the pages the server inherited.
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


def _ensure_server(timeout_s: float, fork: bool = False) -> _ForkServer:
    global _server
    if _server is not None and not _server.alive():
        log.warning("worker fork server %d had died; starting a new one", _server.pid)
        _server.close()
        _server = None
    if _server is None:
        _server = _ForkServer(timeout_s, fork and _can_fork())
    return _server


def _can_fork() -> bool:
    """True when forking this process is safe (one native thread) and waitable (pidfd)."""
    try:
        threads = len(os.listdir("/proc/self/task"))
        os.close(os.pidfd_open(os.getpid()))  # Linux >= 5.3
    except (OSError, AttributeError) as exc:
        log.info("worker fork server: python -m, since this process cannot fork it: %s", exc)
        return False
    if threads != 1:
        log.info("worker fork server: python -m, since this process has %d threads", threads)
        return False
    return True


def run_job(
    model_path: Path,
    settings: dict[str, Any],
    model_name: str,
    timeout_s: float,
    on_progress: ProgressCallback | None = None,
    memory_limit_bytes: int | None = None,
    cancel: threading.Event | None = None,
) -> JobOutcome:
    """Measure one model in a fresh child; every failure of the job is a JobOutcome.

    `timeout_s` bounds the job from the fork on. `on_progress` gets {"phase", "iterations",
    "elapsed_s", "median_ms", "mean_ms"} about once a second; median_ms is the running median
    of the last 1,000 steady-state runs (None before the steady state) and mean_ms is
    elapsed / iterations. Setting `cancel` stops
    the child within ~0.2 s (error_kind "cancelled"). Raises WorkerError only when the fork
    server cannot start or another job is running: measurements must never overlap.
    """
    if not _lock.acquire(blocking=False):
        raise WorkerError("a job is already running", hint="measurements must never overlap")
    try:
        server = _ensure_server(_START_TIMEOUT_S)
        job = {
            "model_path": str(model_path),
            "settings": settings,
            "model_name": model_name,
            "cwd": os.getcwd(),
            "memory_limit_bytes": memory_limit_bytes,
            "test_hook": os.environ.get(worker_main.TEST_HOOK_ENV) or None,  # TEST-ONLY
        }
        return _run_locked(server, job, timeout_s, on_progress, cancel)
    finally:
        _lock.release()


def _run_locked(
    server: _ForkServer,
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
        child = _Child(server, on_progress)
        child.run(spec, t0 + timeout_s, cancel)
        if child.server_lost and child.pid is None:  # it died between jobs: once more
            log.warning("worker fork server %d is gone; starting a new one", server.pid)
            server.close()
            _server = server = _ForkServer(_START_TIMEOUT_S)
            child = _Child(server, on_progress)
            child.run(spec, time.monotonic() + timeout_s, cancel)
        if child.server_lost:
            server.close()
            _server = None
        return child.outcome(timeout_s, _tail(log_path), time.monotonic() - t0)


class _ForkServer:
    """The agent's end of the fork server: ``python -m agent.worker_main``, or a fork of this
    process that runs the same `worker_main.serve`."""

    def __init__(self, timeout_s: float, fork: bool = False) -> None:
        t0 = time.monotonic()
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.proc: subprocess.Popen[bytes] | _Forked
        with theirs:
            self.proc = _fork(theirs, self.sock) if fork else _popen(theirs)
        self.pid = self.proc.pid
        ready = self.recv(timeout_s)
        if ready is None or ready.get("type") != "ready":
            self.close()
            raise WorkerError(
                f"the worker fork server was not ready within {timeout_s:g} s "
                f"(exit status {self.proc.returncode}; its stderr is the agent's)",
                hint="check that `python -m agent.worker_main` can import onnxruntime and numpy",
            )
        # Expected: 3 on Linux (main, OpenBLAS's pool, an idle onnxruntime timer): see above.
        log.debug("worker fork server %d ready with %s threads", self.pid, ready["threads"])
        self.info = ServerInfo(
            self.pid, ready["threads"], time.monotonic() - t0, fork, dict(ready["device"])
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def recv(self, timeout_s: float) -> dict[str, Any] | None:
        """The server's next message, or None when it is gone or silent for timeout_s."""
        if not select.select([self.sock], [], [], max(0.0, timeout_s))[0]:
            return None
        try:
            msg = worker_main.recv_frame(self.sock)
        except (OSError, ValueError):
            return None
        return None if msg is None else dict(json.loads(msg[0]))

    def close(self, timeout_s: float = 5.0) -> None:
        self.sock.close()  # the server exits on end of stream
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout_s)


def _popen(theirs: socket.socket) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")  # see above
    return subprocess.Popen(
        [sys.executable, "-m", "agent.worker_main", str(theirs.fileno())],
        pass_fds=(theirs.fileno(),),
        stdin=subprocess.DEVNULL,
        env=env,
    )


def _fork(theirs: socket.socket, ours: socket.socket) -> _Forked:
    """Fork this (single-threaded) process into the fork server; only the parent returns."""
    sys.stdout.flush()  # or the child would write the parent's buffered output again
    sys.stderr.flush()
    gc.collect()
    gc.freeze()  # from now on this process's collections leave the shared objects alone
    _trim_heap()
    pid = os.fork()
    if pid != 0:
        return _Forked(pid)
    code = 70
    try:  # the server: never returns into the caller
        ours.close()  # or the server would never see the agent's end of stream
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        code = worker_main.serve(theirs)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _trim_heap() -> None:
    """Give free heap pages back before a fork (glibc's malloc_trim; measured: ~0.7 MiB): a
    resident free page the server then reuses would be copied, an absent one is only faulted."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class _Forked:
    """A child forked from this process, with the part of Popen's interface the server needs;
    waited on through a pidfd, so every wait is bounded."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd: int | None = os.pidfd_open(pid)

    def poll(self) -> int | None:
        if self.returncode is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                if self._pidfd is not None:
                    os.close(self._pidfd)
                    self._pidfd = None
        return self.returncode

    def wait(self, timeout: float) -> int:
        if self.poll() is None and self._pidfd is not None:
            if not select.select([self._pidfd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(f"fork server {self.pid}", timeout)
        code = self.poll()
        if code is None:  # the pidfd said it exited, so waitpid has it; never seen
            raise subprocess.TimeoutExpired(f"fork server {self.pid}", timeout)
        return code

    def kill(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)


class _Child:
    """One job's child process: its pipe, its pid, what it sent and how it ended."""

    def __init__(self, server: _ForkServer, on_progress: ProgressCallback | None) -> None:
        self.server = server
        self.on_progress = on_progress
        self.pid: int | None = None
        self.exitcode: int | None = None
        self.header: dict[str, Any] | None = None
        self.latencies: np.ndarray | None = None
        self.error: dict[str, Any] | None = None
        self.last: dict[str, Any] | None = None
        self.done_at: float | None = None  # when the result or error was complete
        self.stopped: str | None = None  # "timeout", "cancelled" or "no exit"
        self.signal_sent: str | None = None
        self.next_step_at = 0.0  # when to escalate after a signal
        self.server_lost = False
        self._buf = bytearray()

    def run(self, spec: bytes, deadline: float, cancel: threading.Event | None) -> None:
        read_end, write_end = os.pipe()
        try:
            worker_main.send_frame(self.server.sock, spec, [write_end])
        except OSError:
            self.server_lost = True
            os.close(read_end)
            return
        finally:
            os.close(write_end)  # the child holds the only write end: its exit means EOF
        os.set_blocking(read_end, False)
        try:
            self._loop(read_end, deadline, cancel)
        finally:
            os.close(read_end)

    def _loop(self, chan: int, deadline: float, cancel: threading.Event | None) -> None:
        watch: list[Any] = [chan, self.server.sock]
        while self.exitcode is None:
            wake = self._schedule(time.monotonic(), deadline, cancel)
            if wake is None:
                return
            readable = select.select(watch, [], [], wake)[0]
            if chan in readable and not self._read(chan):
                watch.remove(chan)
            if self.server.sock in readable and not self._control():
                self.server_lost = True
                return
        drain_until = time.monotonic() + 1.0  # bounded: a grandchild may hold the pipe
        while self._read(chan, drain=True) and time.monotonic() < drain_until:
            pass

    def _schedule(
        self, now: float, deadline: float, cancel: threading.Event | None
    ) -> float | None:
        """Send the signal that is due; seconds until the next decision, None to give up."""
        if self.stopped is None:
            if cancel is not None and cancel.is_set():
                self._stop("cancelled", now)
            elif now >= deadline:
                self._stop("timeout", now)
            elif self.done_at is not None and now >= self.done_at + _EXIT_GRACE_S:
                self._stop("no exit", now)
        if self.stopped is not None:
            if now >= self.next_step_at:
                if self.signal_sent == "SIGKILL":
                    log.error("job child %s survived SIGKILL for %g s", self.pid, _EXIT_GRACE_S)
                    self.server_lost = True  # its server is stuck waiting for it
                    return None
                self._signal(signal.SIGKILL)
                self.next_step_at = now + _EXIT_GRACE_S
            return self.next_step_at - now
        due = deadline if self.done_at is None else self.done_at + _EXIT_GRACE_S
        return max(0.0, min(due - now, _CANCEL_POLL_S if cancel is not None else due - now))

    def _stop(self, reason: str, now: float) -> None:
        self.stopped = reason
        self._signal(signal.SIGTERM)
        self.next_step_at = now + _TERM_GRACE_S

    def _signal(self, sig: signal.Signals) -> None:
        self.signal_sent = sig.name
        if self.pid is None:
            return  # sent when the pid arrives
        for send in (os.killpg, os.kill):  # killpg fails while the child has no group yet
            try:
                send(self.pid, sig)
                return
            except ProcessLookupError:
                continue

    def _control(self) -> bool:
        msg = self.server.recv(0.0)
        if msg is None:
            return False
        if "exitcode" in msg:
            self.exitcode = int(msg["exitcode"])
        elif "pid" in msg:
            self.pid = int(msg["pid"])
            if self.signal_sent is not None:
                self._signal(signal.Signals[self.signal_sent])
        return True

    def _read(self, chan: int, drain: bool = False) -> bool:
        """Read what the pipe holds; False at end of file (or, when draining, when empty)."""
        try:
            data = os.read(chan, 1 << 20)
        except BlockingIOError:
            return not drain
        if not data:
            return False
        self._buf += data
        head = worker_main.FRAME.size
        while len(self._buf) >= head:
            (size,) = worker_main.FRAME.unpack_from(self._buf)
            if len(self._buf) < head + size:
                break
            frame = bytes(self._buf[head : head + size])
            del self._buf[: head + size]
            try:
                self._frame(frame)
            except (ValueError, KeyError, TypeError) as exc:  # a bug, not a reason to stop
                log.error("unreadable message from the job child: %r", exc)
        return True

    def _frame(self, frame: bytes) -> None:
        if self.header is not None and self.latencies is None:
            self.latencies = np.frombuffer(frame, dtype=np.int64).copy()
            self.done_at = time.monotonic()
            return
        msg = json.loads(frame)
        if msg["type"] == "result":
            self.header = msg
            if msg.get("late_imports"):
                log.debug("job child imported %s after the fork", msg["late_imports"])
        elif msg["type"] == "error":
            self.error = msg
            self.done_at = time.monotonic()
        else:
            self._progress(msg)

    def _progress(self, msg: dict[str, Any]) -> None:
        n, elapsed_s = int(msg["iterations"]), msg["elapsed_ns"] / 1e9
        self.last = {
            "phase": msg["phase"],
            "iterations": n,
            "elapsed_s": elapsed_s,
            "median_ms": msg.get("median_ms"),  # of the last 1,000 steady-state runs
            "mean_ms": elapsed_s * 1e3 / n if n else None,
        }
        if self.on_progress is not None:
            try:
                self.on_progress(dict(self.last))
            except Exception:  # a broken display must not lose the measurement
                log.exception("progress callback failed")

    def outcome(self, timeout_s: float, tail: str, wall_s: float) -> JobOutcome:
        if self.header is not None and self.latencies is not None:
            doc, measure_s = self.header["document"], float(self.header["measure_s"])
            return JobOutcome(True, doc, self.latencies, None, None, wall_s, measure_s)
        stopped = f"stopped with {self.signal_sent}"
        if self.error is not None:
            kind, error = str(self.error["kind"]), str(self.error["message"])
        elif self.stopped == "cancelled":
            kind, error = "cancelled", f"cancelled; {stopped}"
        elif self.stopped == "timeout":
            kind, error = "timeout", f"no result within {timeout_s:g} s; {stopped}{self._note()}"
        elif self.server_lost:
            kind, error = "crash", f"the worker fork server died during the job{_where(tail)}"
        else:
            kind, error = classify_exit(self.exitcode, tail)
        return JobOutcome(False, None, None, kind, error, wall_s, None)

    def _note(self) -> str:
        if self.last is None:
            return "; the child sent no progress"
        return (
            f"; last progress: {self.last['phase']}, {self.last['iterations']} iterations "
            f"after {self.last['elapsed_s']:.1f} s"
        )


def classify_exit(exitcode: int | None, tail: str) -> tuple[str, str]:
    """(error_kind, error) for a child that ended without sending a result or an error."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        if -exitcode == signal.SIGKILL:
            return "crash", (
                "worker killed by SIGKILL, not sent by flopgap (most often the kernel's OOM "
                f"killer: check `dmesg` or the cgroup's memory.events){_where(tail)}"
            )
        if any(t in tail.lower() for t in ("bad_alloc", "out of memory")):
            return "out_of_memory", f"worker killed by {name} out of memory{_where(tail)}"
        return "crash", f"worker killed by {name}{_where(tail)}"
    return "exit", f"worker exited with status {exitcode} without a result{_where(tail)}"


def _where(tail: str) -> str:
    return f"; its last output: {tail}" if tail else "; it wrote nothing to stderr"


def _tail(path: Path, max_bytes: int = 4096) -> str:
    """The last lines the child wrote to stdout/stderr, joined by ' | '."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - max_bytes))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-_TAIL_LINES:])
