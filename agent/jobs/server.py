"""The worker's fork server: ``python -m agent.jobs.server SOCKET_FD``.

agent.jobs.fork_server starts this once (or forks it from the agent; `serve` is the same either
way).
It imports numpy, onnxruntime and agent.engine.measure, freezes the garbage collector (so a child's
gc.collect() skips every imported object), says "ready" with the device descriptor (so the
agent's network loop never imports onnxruntime or psutil itself), and then, per job, receives
a JSON job spec plus the write end of a fresh pipe (SCM_RIGHTS) on its control socket, forks a
child that runs agent.jobs.child, reports ``{"pid"}``, and later ``{"pid", "exitcode"}``
(negative: killed by that signal). The framing is agent.jobs.frames. If the agent goes away,
the server kills the running child and exits; a child dies (PR_SET_PDEATHSIG) if the server
does.

**Threads in the server.** It is not strictly single-threaded: importing onnxruntime starts
one idle thread sleeping in a timed wait (measured: no wake-up in seconds), and with
OPENBLAS_NUM_THREADS set above 1, numpy starts OpenBLAS's pool (fork-safe: OpenBLAS parks it
with pthread_atfork). A fork while ORT's thread briefly holds its lock could deadlock the child
in onnxruntime; that is bounded like any hang (timeout, SIGKILL) and has not been seen.
multiprocessing's forkserver preloading onnxruntime would share this; only a cold exec per job
avoids it, at ~300 ms. The agent's network loop, which runs ZeroMQ threads, is forked at most
once, before it has any (agent.jobs.fork_server).

This module imports only the standard library, numpy and shared.errors at import time;
onnxruntime and the rest come in `serve`.
"""

from __future__ import annotations

import gc
import importlib
import os
import select
import signal
import socket
import sys
from typing import Any

from agent.jobs.child import TEST_HOOK_ENV, run_child
from agent.jobs.frames import dumps, recv_frame, send_frame

__all__ = ["PRELOAD", "TEST_HOOK_ENV", "serve"]

# Imported once in the server. numpy.ma: np.median imports it lazily on first use.
PRELOAD = (
    "numpy",
    "numpy.ma",
    "onnxruntime",
    "psutil",
    "agent.engine.measure",
    "agent.engine.options",
)


def serve(sock: socket.socket) -> int:
    """The fork server's loop; returns when the agent closes its end of the socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the agent decides when we stop
    for name in PRELOAD:
        importlib.import_module(name)
    from agent.board import device

    descriptor = device.describe()
    gc.collect()
    gc.freeze()
    wake_r, wake_w = os.pipe()  # SIGCHLD wakes select() through this pipe
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    send_frame(sock, dumps({"type": "ready", "threads": _thread_count(), "device": descriptor}))
    while (msg := recv_frame(sock)) is not None:
        spec, fds = msg
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            continue
        pid = os.fork()
        if pid == 0:
            os._exit(run_child(fds[0], spec, [sock.fileno(), wake_r, wake_w]))
        os.close(fds[0])
        send_frame(sock, dumps({"pid": pid}))
        code = _reap(pid, sock, wake_r)
        if code is None:
            return 0
        send_frame(sock, dumps({"pid": pid, "exitcode": code}))
    return 0


def _reap(pid: int, sock: socket.socket, wake_r: int) -> int | None:
    """The child's exit code; None if the agent went away first (the child is then killed)."""
    watch: list[Any] = [sock, wake_r]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        readable, _, _ = select.select(watch, [], [])
        if wake_r in readable:
            os.read(wake_r, 4096)
        if sock in readable:
            if sock.recv(1, socket.MSG_PEEK) == b"":
                _kill_group(pid)
                os.waitpid(pid, 0)
                return None
            watch.remove(sock)  # a message for later: the agent sends one job at a time


def _kill_group(pid: int) -> None:
    for send in (os.killpg, os.kill):  # killpg fails while the child has no group yet
        try:
            send(pid, signal.SIGKILL)
            return
        except ProcessLookupError:
            continue


def _thread_count() -> int | None:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


if __name__ == "__main__":
    with socket.socket(fileno=int(sys.argv[1])) as control:
        sys.exit(serve(control))
