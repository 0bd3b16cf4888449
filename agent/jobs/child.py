"""What runs in a job's child, forked from the fork server (agent.jobs.server): set up, measure
one model, report on the job pipe (agent.jobs.frames), exit.

The child leads its own process group (a timeout stops it and anything it started, as one
group) and dies (PR_SET_PDEATHSIG) if the server does. Its stdout and stderr go to the job's log
file, so the agent can quote the last lines after a crash (faulthandler writes the Python stack
there on SIGSEGV, SIGABRT, SIGBUS, SIGFPE). Every exception becomes an error message whose kind
(`error_kind`) the agent reports as is. This module imports only the standard library, numpy
and shared.errors at import time; agent.engine.measure is preloaded by the server.
"""

from __future__ import annotations

import ctypes
import faulthandler
import json
import os
import resource
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agent.jobs.frames import dumps, write_frame
from shared.errors import FlopgapError, UsageError

# TEST-ONLY: tests set this in the agent's environment; agent.jobs.worker forwards it in the
# job spec, and _run_test_hook makes the child misbehave on purpose: "segv", "hang", "exit"
# or "oom", for every job, or "segv@NAME" for the jobs of the model named NAME only.
TEST_HOOK_ENV = "FLOPGAP_TEST_HOOK"
_PR_SET_PDEATHSIG = 1
_OOM_TEXT = ("bad_alloc", "failed to allocate memory", "out of memory")


def run_child(chan: int, spec: bytes, inherited: list[int]) -> int:
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
        write_frame(chan, payload)

    try:
        header, latencies = _run(send, job)
        send(header)
        send(latencies)
    except BaseException as exc:  # everything becomes a message; the parent decides the rest
        kind, text = error_kind(exc), _text(exc)
        if kind == "out_of_memory" and job["memory_limit_bytes"] is not None:
            text = f"out of memory under RLIMIT_AS = {job['memory_limit_bytes'] >> 20} MiB: {text}"
        send(dumps({"type": "error", "kind": kind, "message": text}))
    finally:
        os.close(chan)
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def _run(send: Callable[[bytes], None], job: dict[str, Any]) -> tuple[bytes, memoryview]:
    from agent.engine.document import stamp_finished
    from agent.engine.measure import measure  # preloaded in the server: costs nothing here
    from agent.engine.options import settings_from_dict

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
        send(dumps({**msg, "elapsed_ns": elapsed_ns, "median_ms": median}))

    on_progress("load", 0, 0)
    settings = settings_from_dict(job["settings"])
    t0 = time.perf_counter()
    measurement = measure(Path(job["model_path"]), settings, job["model_name"], on_progress)
    measure_s = time.perf_counter() - t0
    stamp_finished(measurement.document)
    header = {"type": "result", "document": measurement.document, "measure_s": measure_s}
    header["late_imports"] = sorted(set(sys.modules) - imported)
    return dumps(header), measurement.latencies_ns.astype("int64", copy=False).data


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
    """TEST-ONLY: misbehave on purpose so tests can check each outcome of agent.jobs.worker.

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
