"""Collector under fleet load: simulated agents heartbeating every second and answering jobs,
against one real `flopgap serve --heartbeat 1 --no-calibrate` subprocess (issues 9 and 19).

Two plans, both run by `python -m bench bench.load_agents`:
- 200 agents in rounds (issue 9's figure, unchanged): each agent gets `duration / JOB_S - 1`
  jobs and answers each JOB_S seconds after receiving it.
- 5,000 agents spread (issue 19): one job each, agent i holding it `duration * (i+1) / N`
  seconds, so results arrive evenly (N / duration a second) over the whole window while
  every agent beats at 1 Hz.
`python -m bench.load_agents --agents N [--duration S] [--jobs rounds|spread]` runs one.

Targets: no agent falsely marked missing, no lost result, and (issue 19) under half a core of
collector CPU over the steady window: from the campaign's submission, once every agent has
registered, to its end. The simulator runs in this process on the same cores, so the detail
gives its own CPU and its achieved heartbeat rate (a slow simulator, not a slow collector,
shows there), with messages/s, the Result -> Ack round trip and the collector's peak RSS.
Result documents are real: one measure() call's document and its 1,000 latencies.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from agent.engine.measure import MeasureSettings, measure
from agent.engine.timing import StopRule
from bench.figure import Figure
from bench.fleet_helpers import collector, expect_count, tiny_model
from bench.load_sim import SimCounts, Workload, raise_fd_limit, start_fleet, total
from collector.client import Client
from collector.store import Store
from shared import protocol

JOB_S = 2.0
HEARTBEAT_S = 1.0
DURATION_S = 60.0
SAMPLES = 1_000
REGISTER_S_PER_AGENT = 0.05  # the wait bound for the registration storm, per agent
SUBMIT_TIMEOUT_S = 120.0  # submitting queues and dispatches every agent's jobs in one message


@dataclass(frozen=True)
class Plan:
    """One load: how many agents, for how long, and how their jobs are laid out."""

    agents: int
    duration_s: float = DURATION_S
    jobs: str = "rounds"  # rounds: JOB_S-second jobs back to back; spread: one job each
    threads: int = 4

    @property
    def jobs_per_agent(self) -> int:
        return max(1, int(self.duration_s / JOB_S) - 1) if self.jobs == "rounds" else 1

    def hold_s(self, index: int) -> float:
        """How long agent `index` holds each job before its Result."""
        if self.jobs == "rounds":
            return JOB_S
        return self.duration_s * (index + 1) / self.agents


PLANS: tuple[Plan, ...] = (Plan(200), Plan(5_000, jobs="spread"))


@dataclass
class _Snap:
    """The window's edges: collector and simulator CPU seconds, the fleet's counts."""

    at: float
    collector_cpu: float
    sim_cpu: float
    counts: SimCounts


def _snap(proc: psutil.Process, me: psutil.Process, counts: list[SimCounts]) -> _Snap:
    c, s = proc.cpu_times(), me.cpu_times()
    return _Snap(time.perf_counter(), c.user + c.system, s.user + s.system, total(counts))


def _payload(sha: str, settings: dict[str, Any], jobs: int) -> dict[str, Any]:
    return {"name": "load", "targets": {"agents": ["load-*"], "tags": {}},
            "jobs": [{"model": "tiny", "sha256": sha, "settings": settings, "repeat": r}
                     for r in range(jobs)],
            "timeout_s": 60.0 + 2 * DURATION_S, "retries": 0, "spec": {}}  # fmt: skip


def _watch(proc: psutil.Process, until: threading.Event, timeout: float) -> int:
    """Peak RSS (bytes) of `proc`, sampled every 0.5 s until `until` is set or `timeout`."""
    peak, deadline = 0, time.monotonic() + timeout
    while not until.wait(0.5) and time.monotonic() < deadline:  # a sampling period
        peak = max(peak, proc.memory_info().rss)
    return max(peak, proc.memory_info().rss)


def _wait_acks(counts: list[SimCounts], timeout: float) -> None:
    """Until every Result sent has its Ack, or `timeout`; a missing Ack then counts as such."""
    deadline, tick = time.monotonic() + timeout, threading.Event()
    while time.monotonic() < deadline:
        now = total(counts)
        if now.acks >= now.results:
            return
        tick.wait(0.05)  # a polling period under a deadline


def _percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def measure_load(folder: Path, plan: Plan) -> dict[str, float]:
    """Run `plan`; returns rates, counts and both processes' resource use."""
    model = tiny_model(folder)
    run = measure(model, MeasureSettings(warmup_runs=1, warmup_seconds=0,
                                         stop=StopRule(SAMPLES, 0.0, 30.0)))  # fmt: skip
    doc, lat = run.document, np.asarray(run.latencies_ns, dtype=np.int64)
    data = model.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    fd_before, fd_after = raise_fd_limit(plan.agents)
    db = folder / "load.sqlite"
    server, endpoint = collector(db, heartbeat_s=HEARTBEAT_S)
    proc, me = psutil.Process(server.proc.pid), psutil.Process()
    stop, finished = threading.Event(), threading.Event()
    names = [f"load-{i:04d}" for i in range(plan.agents)]
    work = Workload(doc, lat, plan.hold_s, HEARTBEAT_S)
    watcher: list[int] = []
    w = threading.Thread(target=lambda: watcher.append(_watch(proc, finished, 600)))
    w.start()
    pool, counts, ctx = start_fleet(endpoint, names, work, plan.threads, stop)
    try:
        t_reg = time.perf_counter()
        expect_count(server, r"agent load-\d+ registered", plan.agents,
                     10 + plan.agents * REGISTER_S_PER_AGENT)  # fmt: skip
        register_s = time.perf_counter() - t_reg
        with Client(endpoint, timeout_s=SUBMIT_TIMEOUT_S) as client:
            client.send(protocol.ModelData(sha, data))
            s0 = _snap(proc, me, counts)
            payload = _payload(sha, doc["settings"], plan.jobs_per_agent)
            client.request(protocol.SubmitCampaign(payload), protocol.CampaignAccepted)
        server.expect(r"campaign \w+ finished", plan.duration_s * 3 + 30)
        _wait_acks(counts, 30)  # the last Ack leaves after the batch that finished it commits
        s1 = _snap(proc, me, counts)
    finally:
        finished.set()
        stop.set()
        for t in pool:
            t.join(timeout=30)
        if not any(t.is_alive() for t in pool):  # term() waits for every socket to close
            ctx.term()
        server.stop()
        w.join(timeout=10)
    store = Store(db)
    try:
        stored = sum(r.status == "ok" for r in store.result_rows())
        jobs = len(store.jobs())
    finally:
        store.close()
    return _figures_of(plan, s0, s1, stored, jobs, server.lines, watcher, register_s,
                       (fd_before, fd_after))  # fmt: skip


def _figures_of(plan: Plan, s0: _Snap, s1: _Snap, stored: int, jobs: int, lines: list[str],
                watcher: list[int], register_s: float,
                fds: tuple[int, int]) -> dict[str, float]:  # fmt: skip
    wall, a, b = s1.at - s0.at, s0.counts, s1.counts
    rtt = b.ack_rtt_s
    return {
        "agents": plan.agents, "jobs": jobs, "stored": stored, "lost": jobs - stored,
        "acks": b.acks, "results_sent": b.results, "registered": b.registered,
        "missing": sum("missed its heartbeats" in line for line in lines),
        "wall_s": wall, "register_s": register_s,
        "msgs_per_s": (b.sent + b.received - a.sent - a.received) / wall,
        "results_per_s": (b.acks - a.acks) / wall,
        "cpu_pct": 100 * (s1.collector_cpu - s0.collector_cpu) / wall,
        "sim_cpu_pct": 100 * (s1.sim_cpu - s0.sim_cpu) / wall,
        "beat_hz": (b.beats - a.beats) / wall / plan.agents,
        "late_beats": b.late_beats, "max_late_ms": b.max_late_s * 1000,
        "ack_p50_ms": _percentile_ms(rtt, 50), "ack_p99_ms": _percentile_ms(rtt, 99),
        "welcome_p99_ms": _percentile_ms(b.welcome_rtt_s, 99),
        "samples": SAMPLES, "rss_mb": (watcher[0] if watcher else 0) / 2**20,
        "fd_before": fds[0], "fd_after": fds[1],
    }  # fmt: skip


def figures(plan: Plan, m: dict[str, float]) -> list[Figure]:
    """The plan's rows; 200 agents keep issue 9's names, other counts say theirs."""
    detail = (
        f"{m['agents']:.0f} simulated agents (heartbeat {HEARTBEAT_S:g} s, {plan.jobs} jobs, "
        f"{m['samples']:.0f} latencies per result) for {m['wall_s']:.0f} s after "
        f"{m['register_s']:.1f} s of registration: {m['msgs_per_s']:.0f} messages/s in and out, "
        f"{m['results_per_s']:.0f} results/s acked (Result -> Ack p50 {m['ack_p50_ms']:.1f} ms, "
        f"p99 {m['ack_p99_ms']:.1f} ms); {m['stored']:.0f}/{m['jobs']:.0f} jobs stored, "
        f"{m['acks']:.0f} acks for {m['results_sent']:.0f} results sent; collector CPU "
        f"{m['cpu_pct']:.0f} % of one core, peak RSS {m['rss_mb']:.0f} MiB; simulator CPU "
        f"{m['sim_cpu_pct']:.0f} %, heartbeats {m['beat_hz']:.3f} Hz per agent "
        f"({m['late_beats']:.0f} late, worst {m['max_late_ms']:.0f} ms)"
    )
    name = "load" if plan.agents == 200 else f"load, {plan.agents:,} agents"
    rows = [
        Figure(f"{name}: agents falsely marked missing", m["missing"], 0, True, detail),
        Figure(f"{name}: lost results", m["lost"], 0, True, detail),
    ]
    if plan.agents != 200:
        rows.append(Figure(f"{name}: collector CPU, share of one core", m["cpu_pct"] / 100,
                           0.5, True, detail))  # fmt: skip
    return rows


def run(plans: tuple[Plan, ...] = PLANS) -> list[Figure]:
    rows: list[Figure] = []
    for plan in plans:
        with tempfile.TemporaryDirectory() as tmp:
            rows += figures(plan, measure_load(Path(tmp), plan))
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load_agents",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--agents", type=int, help="one plan of N agents (default: 200, 5000)")
    parser.add_argument("--duration", type=float, default=DURATION_S, help="seconds of load")
    parser.add_argument(
        "--jobs",
        choices=("rounds", "spread"),
        help="job layout (default: rounds for 200 agents, else spread)",
    )
    parser.add_argument("--threads", type=int, default=4, help="simulator threads")
    args = parser.parse_args(argv)  # fmt: skip
    if args.agents is None:
        plans = PLANS
    else:
        if not 1 <= args.agents <= 20_000 or args.duration <= 0 or args.threads < 1:
            parser.error("--agents must be 1..20000, --duration > 0, --threads >= 1")
        jobs = args.jobs or ("rounds" if args.agents == 200 else "spread")
        plans = (Plan(args.agents, args.duration, jobs, args.threads),)
    for figure in run(plans):
        print(figure.row(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
