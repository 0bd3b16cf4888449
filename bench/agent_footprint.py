"""Agent footprint: idle RSS of `flopgap-agent run` against a bare Python process that imports
onnxruntime (target <= +15 MB), and its start-up time, measured side by side.

The agent is two processes: the network loop and the pre-warmed fork server its jobs fork
from (so each job starts in ~8 ms instead of ~300 ms). Both are reported; the figure is the
loop process alone, with the pair in the detail.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench.figure import Figure
from collector.procs import Child

_POLL = threading.Event()  # never set: wait(t) is a bounded polling period
BARE = "import onnxruntime, sys; print('ready', flush=True); sys.stdin.read()"


def _bare() -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", BARE], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.readline()
    start_s = time.perf_counter() - t0
    rss = psutil.Process(proc.pid).memory_info().rss / 2**20
    proc.kill()
    proc.wait()
    return rss, start_s


def _agent(folder: Path) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    agent = Child([sys.executable, "-m", "agent", "run", "--collector", "tcp://127.0.0.1:9",
                   "--name", "footprint", "--spool", str(folder / "s"), "--cache",
                   str(folder / "c")], "agent")  # fmt: skip
    try:
        agent.expect(r"connecting to", 60)
        start_s = time.perf_counter() - t0
        proc = psutil.Process(agent.proc.pid)
        deadline = time.monotonic() + 30
        while not proc.children() and time.monotonic() < deadline:
            _POLL.wait(0.05)  # polling under a deadline for the fork server to appear
        loop = proc.memory_info().rss / 2**20
        server = sum(c.memory_info().rss for c in proc.children(recursive=True)) / 2**20
    finally:
        agent.stop()
    return loop, server, start_s


def run() -> list[Figure]:
    bare_rss, bare_start = _bare()
    with tempfile.TemporaryDirectory() as tmp:
        loop, server, start = _agent(Path(tmp))
    detail = (
        f"bare python + onnxruntime {bare_rss:.0f} MiB (start {bare_start:.2f} s); agent "
        f"loop {loop:.0f} MiB, fork server {server:.0f} MiB, together +"
        f"{loop + server - bare_rss:.0f} MiB; agent start to 'connecting' {start:.2f} s"
    )
    return [Figure("agent idle RSS over bare onnxruntime import, MiB (loop process)",
                   loop - bare_rss, 15.0, True, detail)]  # fmt: skip
