"""The agent's side of one job: hand the job to the fork server, read what the child sends, stop
it when it runs late or is cancelled, and turn how it ended into a JobOutcome.

The job goes to the server with the write end of a fresh pipe (agent.jobs.frames); the agent
keeps the read end, so the child's exit means end of file. The server reports the child's pid
and exit code on its control socket. A timeout or cancel sends SIGTERM to the child's process
group, then SIGKILL after a grace. Every wait is a bounded `select`.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from agent.jobs.fork_server import ForkServer
from agent.jobs.frames import send_frame, split_frames
from agent.jobs.outcome import JobOutcome, classify_exit, progress_note, where

log = logging.getLogger("flopgap.agent.worker")

ProgressCallback = Callable[[dict[str, Any]], None]
_TERM_GRACE_S = 1.0  # SIGTERM, then SIGKILL after this
_EXIT_GRACE_S = 5.0  # a child must exit this soon after its result, or after SIGKILL
_CANCEL_POLL_S = 0.2


class JobSupervisor:
    """One job's child process: its pipe, its pid, what it sent and how it ended."""

    def __init__(self, server: ForkServer, on_progress: ProgressCallback | None) -> None:
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
            send_frame(self.server.sock, spec, [write_end])
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
        for frame in split_frames(self._buf):
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
            note = progress_note(self.last)
            kind, error = "timeout", f"no result within {timeout_s:g} s; {stopped}{note}"
        elif self.server_lost:
            kind, error = "crash", f"the worker fork server died during the job{where(tail)}"
        else:
            kind, error = classify_exit(self.exitcode, tail)
        return JobOutcome(False, None, None, kind, error, wall_s, None)
