"""The worker's fork server and its job children: ``python -m agent.worker_main SOCKET_FD``.

agent.worker starts this once (or forks it from the agent; `serve` is the same either way).
It imports numpy, onnxruntime and agent.measure, freezes the garbage collector (so a child's
gc.collect() skips every imported object), says "ready" with the device descriptor (so the
agent's network loop never imports onnxruntime or psutil itself), and then, per job, receives
a JSON job spec plus the write end of a fresh pipe (SCM_RIGHTS) on its control socket, forks a
child that runs measure(), reports ``{"pid"}``, and later ``{"pid", "exitcode"}`` (negative:
killed by that signal). Its only other thread is onnxruntime's idle one (agent.worker says why
forking it is still sound); the agent's network loop, which runs ZeroMQ threads, is forked at
most once, before it has any. If the agent goes away, the server kills the running child and
exits; a child dies (PR_SET_PDEATHSIG) if the server does.

The child writes frames (u64 little-endian length, then bytes) to its pipe; each is a UTF-8
JSON object: ``{"type": "progress", "phase", "iterations", "elapsed_ns"}`` any number of times,
then ``{"type": "result", "document", "measure_s", "late_imports"}`` followed by one raw frame
of native int64 latencies, or ``{"type": "error", "kind", "message"}``. Nothing is pickled.
Its stdout and stderr go to the job's log file, so the parent can quote the last lines after a
crash (faulthandler writes the Python stack there on SIGSEGV, SIGABRT, SIGBUS, SIGFPE).

Control-socket messages use the same framing. This module imports only the standard library,
numpy and shared.errors at import time; onnxruntime and the rest come in `serve`.
"""

from __future__ import annotations

import ctypes
import faulthandler
import gc
import importlib
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import FlopgapError, UsageError

# Imported once in the server. numpy.ma: np.median imports it lazily on first use.
PRELOAD = ("numpy", "numpy.ma", "onnxruntime", "psutil", "agent.measure", "agent.options")
# TEST-ONLY: tests set this in the agent's environment; agent.worker forwards it in the job spec
# and _run_test_hook makes the child misbehave on purpose: "segv", "hang", "exit" or "oom",
# for every job, or "segv@NAME" for the jobs of the model named NAME only.
TEST_HOOK_ENV = "FLOPGAP_TEST_HOOK"
FRAME = struct.Struct("<Q")
MAX_CONTROL_BYTES = 16 << 20
_PR_SET_PDEATHSIG = 1
_OOM_TEXT = ("bad_alloc", "failed to allocate memory", "out of memory")


def send_frame(sock: socket.socket, payload: bytes, fds: list[int] | None = None) -> None:
    """One length-prefixed message on a stream socket, with file descriptors attached."""
    data = FRAME.pack(len(payload)) + payload
    sent = socket.send_fds(sock, [data], fds) if fds else 0
    sock.sendall(data[sent:])


def recv_frame(sock: socket.socket) -> tuple[bytes, list[int]] | None:
    """One message and the file descriptors that came with it; None at end of stream."""
    head, fds = b"", []
    while len(head) < FRAME.size:
        chunk, got, _, _ = socket.recv_fds(sock, FRAME.size - len(head), 4)
        fds += got
        if not chunk:
            return None
        head += chunk
    (size,) = FRAME.unpack(head)
    if size > MAX_CONTROL_BYTES:
        raise ValueError(f"control message of {size} bytes")
    body = b""
    while len(body) < size:
        chunk = sock.recv(size - len(body))
        if not chunk:
            return None
        body += chunk
    return body, fds


def serve(sock: socket.socket) -> int:
    """The fork server's loop; returns when the agent closes its end of the socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the agent decides when we stop
    for name in PRELOAD:
        importlib.import_module(name)
    from agent import device

    descriptor = device.describe()
    gc.collect()
    gc.freeze()
    wake_r, wake_w = os.pipe()  # SIGCHLD wakes select() through this pipe
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    send_frame(sock, _json({"type": "ready", "threads": _thread_count(), "device": descriptor}))
    while (msg := recv_frame(sock)) is not None:
        spec, fds = msg
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            continue
        pid = os.fork()
        if pid == 0:
            os._exit(_child_guarded(fds[0], spec, [sock.fileno(), wake_r, wake_w]))
        os.close(fds[0])
        send_frame(sock, _json({"pid": pid}))
        code = _reap(pid, sock, wake_r)
        if code is None:
            return 0
        send_frame(sock, _json({"pid": pid, "exitcode": code}))
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


def _child_guarded(chan: int, spec: bytes, inherited: list[int]) -> int:
    """The child's exit status; never returns into the server's loop, whatever happens."""
    try:
        return _child(chan, spec, inherited)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        return 70


def _child(chan: int, spec: bytes, inherited: list[int]) -> int:
    """Runs in the forked child: set up, measure, report; the return value is the exit status."""
    signal.set_wakeup_fd(-1)
    for fd in inherited:
        os.close(fd)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    job = json.loads(spec)
    _isolate(job["log_path"])
    os.chdir(job["cwd"])

    def send(payload: bytes | memoryview) -> None:
        body = memoryview(payload).cast("B")
        for part in (memoryview(FRAME.pack(body.nbytes)), body):
            while part:
                part = part[os.write(chan, part) :]

    try:
        header, latencies = _run(send, job)
        send(header)
        send(latencies)
    except BaseException as exc:  # everything becomes a message; the parent decides the rest
        kind, text = error_kind(exc), _text(exc)
        if kind == "out_of_memory" and job["memory_limit_bytes"] is not None:
            text = f"out of memory under RLIMIT_AS = {job['memory_limit_bytes'] >> 20} MiB: {text}"
        send(_json({"type": "error", "kind": kind, "message": text}))
    finally:
        os.close(chan)
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def _run(send: Callable[[bytes], None], job: dict[str, Any]) -> tuple[bytes, memoryview]:
    from agent.measure import measure  # preloaded in the server: costs nothing here
    from agent.options import settings_from_dict

    imported = set(sys.modules)
    if job["memory_limit_bytes"] is not None:
        _limit_memory(int(job["memory_limit_bytes"]))
    _run_test_hook(job["test_hook"], job["model_name"], job["memory_limit_bytes"])

    def on_progress(
        phase: str, iterations: int, elapsed_ns: int, samples: Sequence[int] | None = None
    ) -> None:
        msg = {"type": "progress", "phase": phase, "iterations": iterations}
        median = None
        if samples:  # between iterations, outside the timestamps: the last 1,000 at most
            median = float(np.median(np.asarray(samples[-1000:], dtype=np.int64))) / 1e6
        send(_json({**msg, "elapsed_ns": elapsed_ns, "median_ms": median}))

    on_progress("load", 0, 0)
    settings = settings_from_dict(job["settings"])
    t0 = time.perf_counter()
    measurement = measure(Path(job["model_path"]), settings, job["model_name"], on_progress)
    measure_s = time.perf_counter() - t0
    header = {"type": "result", "document": measurement.document, "measure_s": measure_s}
    header["late_imports"] = sorted(set(sys.modules) - imported)
    return _json(header), measurement.latencies_ns.astype("int64", copy=False).data


def error_kind(exc: BaseException) -> str:
    """The outcome kind of a child's exception: out_of_memory, model_error, ..., internal_error."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 8:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(e, MemoryError) for e in chain) or any(
        t in str(e).lower() for e in chain for t in _OOM_TEXT
    ):
        return "out_of_memory"
    if isinstance(exc, FlopgapError):
        name = type(exc).__name__.removesuffix("Error") or "Flopgap"
        return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_") + "_error"
    return "internal_error"


def _text(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, FlopgapError) else f"{type(exc).__name__}: {exc}"
    return text[:4000]


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _thread_count() -> int | None:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def _isolate(log_path: str) -> None:
    """Own process group, die with the server, stdout+stderr to the log, faulthandler on."""
    os.setpgid(0, 0)  # a timeout then stops the child and anything it started, as one group
    if sys.platform.startswith("linux"):
        server = os.getppid()
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != server:  # the server died before prctl took effect
            os._exit(1)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    faulthandler.enable(file=sys.stderr, all_threads=True)


def _limit_memory(limit: int) -> None:
    """RLIMIT_AS = limit. It counts address space, not RSS: refuse a limit already exceeded."""
    vm = _vm_bytes()
    if vm is not None and vm >= limit:
        raise UsageError(
            f"memory limit {limit >> 20} MiB is below the worker's address space at start "
            f"({vm >> 20} MiB of Python, numpy and onnxruntime)",
            hint="RLIMIT_AS counts virtual memory, including reservations: raise the limit",
        )
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _vm_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _run_test_hook(hook: str | None, model_name: str | None, memory_limit: int | None) -> None:
    """TEST-ONLY: misbehave on purpose so tests can check each outcome of agent.worker.

    `hook` is "ACTION" (every job) or "ACTION@MODEL_NAME" (only that model's jobs).
    """
    if hook is None:
        return
    hook, _, only = hook.partition("@")
    if only and only != model_name:
        return
    print(f"flopgap test hook: {hook}", file=sys.stderr, flush=True)
    if hook == "segv":
        ctypes.string_at(0)  # reads address 0: a real SIGSEGV
    elif hook == "hang":
        threading.Event().wait()  # never set: stands for a model that never returns
    elif hook == "exit":
        os._exit(3)
    elif hook == "oom":
        bytearray(memory_limit or 1 << 62)  # fails under RLIMIT_AS: MemoryError


if __name__ == "__main__":
    with socket.socket(fileno=int(sys.argv[1])) as control:
        sys.exit(serve(control))
