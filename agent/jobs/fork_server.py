"""The agent's handle on the worker fork server (agent.jobs.server): start it, by ``python -m``
or by forking the agent itself, talk to it on its control socket, and stop it.

* **Forked from the agent itself when that is safe** (agent.jobs.worker's `start_server(fork=True)`,
  which `flopgap-agent run` calls first thing, before any thread, ZeroMQ context or key
  exists): the server then shares, copy-on-write, the interpreter and numpy the agent has
  already loaded, instead of loading them a second time (measured on x86-64: the tree's PSS
  falls by ~15 MiB; bench/agent_footprint.py). The fork is refused, and ``python -m`` used
  instead, unless the process has exactly one native thread (/proc/self/task) and the kernel
  has pidfds (bounded waits on the child): it never forks a threaded process. A server that
  dies later is always replaced by ``python -m``, since the agent has threads by then.
* **OpenBLAS on one thread** (OPENBLAS_NUM_THREADS=1 unless set): nothing on the measuring
  side calls BLAS (ORT has its own thread pools; numpy only draws inputs and sorts latencies),
  so its idle pool was memory, and threads in the server, for nothing; and with it numpy
  starts no thread, which is what lets the agent import numpy before it forks the server.
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
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.jobs import server as worker_main
from agent.jobs.frames import recv_frame
from shared.errors import FlopgapError

log = logging.getLogger("flopgap.agent.worker")

_ROOT = str(Path(__file__).resolve().parents[1])  # the folder holding the agent package


class WorkerError(FlopgapError):
    """The worker machinery itself failed (not a job): no fork server, or jobs overlapping."""


@dataclass(frozen=True)
class ServerInfo:
    """The running fork server: pid, native thread count (agent.jobs.server says which),
    start-up seconds, whether it was forked from this process, and the device descriptor
    (agent.board.device) it computed."""

    pid: int
    threads: int | None
    start_s: float
    forked: bool
    device: dict[str, Any]


def can_fork() -> bool:
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


class ForkServer:
    """The agent's end of the fork server: ``python -m agent.jobs.server``, or a fork of this
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
                hint="check that `python -m agent.jobs.server` can import onnxruntime and numpy",
            )
        # Expected: 3 on Linux (main, OpenBLAS's pool, an idle onnxruntime timer): see
        # agent.jobs.server.
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
            msg = recv_frame(self.sock)
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
        [sys.executable, "-m", "agent.jobs.server", str(theirs.fileno())],
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
