"""Agent footprint: the idle memory of `flopgap-agent run`, its whole process tree, against a bare
Python process that imports onnxruntime (target <= +15 MB), and its start-up time.

The agent is two processes: the network loop and the fork server its jobs fork from (so each
job starts in ~8 ms instead of ~300 ms). A user on a 1 GB board pays for both, so the figure is
the tree's memory minus the bare process's, both counted the same way:

* **PSS summed over the tree** (psutil memory_full_info().pss, from /proc/PID/smaps_rollup). A
  page shared by n processes counts 1/n in each, so the pages the loop and the fork server share
  (the fork server is forked from the loop: interpreter, numpy, shared libraries) count once in
  the sum, as they cost once. RSS would count them twice; USS would count them not at all,
  which is kinder than the truth. One caveat: a library page also mapped by a process outside
  the tree (another Python with numpy on this machine) counts only in part, for the tree and
  the bare process alike, so the two are measured one after the other, alternately, REPEAT
  times, and the figure is the median difference. The anonymous part (PSS of anonymous pages:
  the heaps, never shared outside the tree) is shown too, as it does not depend on what else
  runs on the machine.
* **Start-up**: seconds from the exec to the "connecting to" log line (the fork server is ready
  by then), against the bare process's seconds to import onnxruntime.

Run alone: python -c "from bench import agent_footprint as f; [print(x.row()) for x in f.run()]"
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.figure import Figure
from collector.procs import Child

REPEAT = 3
TARGET_MB = 15.0
_MIB = 2**20
_POLL = threading.Event()  # never set: wait(t) is a bounded polling period
BARE = "import onnxruntime, sys; print('ready', flush=True); sys.stdin.read()"


@dataclass(frozen=True)
class Memory:
    """One process's (or a tree's summed) memory in MiB: PSS, its anonymous part, RSS."""

    pss: float
    pss_anon: float
    rss: float

    def __add__(self, other: Memory) -> Memory:
        return Memory(self.pss + other.pss, self.pss_anon + other.pss_anon, self.rss + other.rss)


def _memory(pid: int) -> Memory:
    full = psutil.Process(pid).memory_full_info()
    return Memory(full.pss / _MIB, _pss_anon(pid), full.rss / _MIB)


def _pss_anon(pid: int) -> float:
    """Pss_Anon from smaps_rollup (Linux >= 5.8; psutil does not report it), MiB."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss_Anon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _bare() -> tuple[Memory, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", BARE], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    try:
        proc.stdout.readline()
        start_s = time.perf_counter() - t0
        return _memory(proc.pid), start_s
    finally:
        proc.kill()
        proc.wait()


def _agent(folder: Path) -> tuple[Memory, Memory, float]:
    """(loop, fork server, start-up seconds) of one idle `flopgap-agent run`."""
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
            _POLL.wait(0.05)  # polling under a deadline (the server exists by "connecting")
        server = Memory(0.0, 0.0, 0.0)
        for child in proc.children(recursive=True):
            server = server + _memory(child.pid)
        return _memory(proc.pid), server, start_s
    finally:
        agent.stop()


def run() -> list[Figure]:
    bare: list[tuple[Memory, float]] = []
    tree: list[tuple[Memory, Memory, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(REPEAT):  # alternately: what else runs on the machine moves both alike
            bare.append(_bare())
            tree.append(_agent(Path(tmp) / str(i)))
    pairs = [(t[0] + t[1], b[0]) for b, t in zip(bare, tree, strict=True)]
    over = statistics.median(t.pss - b.pss for t, b in pairs)
    anon = statistics.median(t.pss_anon - b.pss_anon for t, b in pairs)

    def med(values: list[float]) -> float:
        return statistics.median(values)

    loop, server = med([t[0].pss for t in tree]), med([t[1].pss for t in tree])
    detail = (
        f"PSS, median of {REPEAT}: bare python + onnxruntime {med([b[0].pss for b in bare]):.1f}"
        f" MiB (RSS {med([b[0].rss for b in bare]):.0f}); agent tree {loop + server:.1f} MiB ="
        f" loop {loop:.1f} (RSS {med([t[0].rss for t in tree]):.0f}) + fork server {server:.1f}"
        f" (RSS {med([t[1].rss for t in tree]):.0f}); anonymous part +{anon:.1f} MiB; start-up:"
        f" bare {med([b[1] for b in bare]):.2f} s, agent to 'connecting'"
        f" {med([t[2] for t in tree]):.2f} s"
    )
    return [Figure("agent idle memory over bare onnxruntime import, MiB (PSS, whole tree)",
                   over, TARGET_MB, True, detail)]  # fmt: skip
