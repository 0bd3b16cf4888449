"""The fork server forked from the agent itself (agent.jobs.worker, `start_server(fork=True)`).

`flopgap-agent run` forks its fork server before it has any thread, so the two share the
interpreter and numpy; its network loop never loads onnxruntime (the device descriptor comes
from the server). Each case runs in a fresh subprocess: pytest's own process has threads, so
there `fork=True` must fall back to ``python -m``, which is checked too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agent.jobs import worker
from tests.conftest import REPO

_FAST = "{'min_seconds': 0, 'min_iterations': 20, 'warmup_runs': 1, 'warmup_seconds': 0}"

_PROBE = """
import os, signal, sys
from pathlib import Path
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as cmd_run does
from agent.jobs import worker  # what `flopgap-agent run` holds when it forks
from agent.commands import cli
from agent.board import config
info = worker.start_server(fork=True)
from agent.link import loop as runner
from shared import keys, transport
print("LIGHT", sorted(m for m in ("onnxruntime", "psutil", "asyncio") if m in sys.modules))
print("FORKED", info.forked, info.device["onnxruntime"], info.device["providers"][-1])
out = worker.run_job(Path(sys.argv[1]), FAST, "tiny", 60.0)
print("JOB", out.ok, out.error)
os.kill(info.pid, signal.SIGKILL)  # a dead forked server is replaced by `python -m`
out = worker.run_job(Path(sys.argv[1]), FAST, "tiny", 60.0)
print("AGAIN", out.ok, worker.start_server().forked, worker.start_server().pid != info.pid)
worker.stop_server()
""".replace("FAST", _FAST)


def test_a_server_forked_from_a_single_threaded_agent_runs_jobs(tiny_model: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tiny_model)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert lines["LIGHT"] == "[]", "the network loop must not load these itself"
    assert lines["FORKED"].startswith("True ") and lines["FORKED"].endswith("CPUExecutionProvider")
    assert lines["JOB"] == "True None"
    assert lines["AGAIN"] == "True False True"


def test_a_threaded_process_never_forks_its_server() -> None:
    info = worker.start_server(fork=True)  # pytest has threads: python -m instead
    try:
        assert not info.forked
        assert info.device["logical_cores"] >= 1
    finally:
        worker.stop_server()
