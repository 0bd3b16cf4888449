"""Collector under fleet load: 200 simulated agents heartbeating every second and answering
jobs, against one real `flopgap serve --heartbeat 1 --no-calibrate` subprocess (issue 9).

Targets: no agent falsely marked missing (count <= 0) and no lost result (count <= 0); the
detail gives messages/s, results/s and the collector's CPU % and peak RSS (psutil).

The agents speak the real protocol from one process: THREADS threads, each multiplexing its
share of DEALER sockets with one zmq.Poller. Each agent registers, heartbeats every second,
and answers each Job JOB_S seconds after receiving it (a timer in the poll loop, not a sleep)
with a Result carrying a real result document and 1,000 latencies from one measure() call.
Each agent gets `duration / JOB_S` jobs, so the campaign lasts about `duration` seconds.
"""

from __future__ import annotations

import hashlib
import heapq
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import zmq

from agent.engine.measure import MeasureSettings, measure
from agent.engine.timing import StopRule
from bench.figure import Figure
from bench.fleet_helpers import tiny_model
from collector.client import Client
from collector.procs import Child
from collector.store import Store
from shared import protocol

AGENTS = 200
THREADS = 4
JOB_S = 2.0
HEARTBEAT_S = 1.0
DURATION_S = 60.0
SAMPLES = 1_000


@dataclass
class _Counts:
    sent: int = 0
    received: int = 0
    results: int = 0
    acks: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _sim_agents(
    endpoint: str, names: list[str], doc: dict[str, Any], lat: np.ndarray,
    stop: threading.Event, counts: _Counts,
) -> None:  # fmt: skip
    """Run `names` as agents on one poller until `stop` is set."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    poller, socks = zmq.Poller(), {}
    sent = received = results = acks = 0
    for name in names:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        device = {"device_id": name, "providers": ["CPUExecutionProvider"]}
        sock.send_multipart(protocol.encode(protocol.Register(name, "sim", device, {}, "")))
        sent += 1
        poller.register(sock, zmq.POLLIN)
        socks[sock] = name
    beats = {sock: time.monotonic() + HEARTBEAT_S for sock in socks}
    due: list[tuple[float, int, zmq.Socket[bytes], str]] = []  # (when, tie, socket, job id)
    running: dict[zmq.Socket[bytes], str] = {}
    while not stop.is_set():
        now = time.monotonic()
        timeout = min(min(beats.values()), due[0][0] if due else now + 1) - now
        for sock, _ in poller.poll(max(0, int(timeout * 1000)) + 1):
            msg = protocol.decode(sock.recv_multipart())
            received += 1
            if isinstance(msg, protocol.Job) and running.get(sock) != msg.job_id:
                running[sock] = msg.job_id
                heapq.heappush(due, (time.monotonic() + JOB_S, id(msg), sock, msg.job_id))
            elif isinstance(msg, protocol.Ack):
                acks += 1
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, _, sock, job_id = heapq.heappop(due)
            sock.send_multipart(protocol.encode(
                protocol.Result(job_id, uuid.uuid4().hex, doc, lat)))  # fmt: skip
            running.pop(sock, None)
            sent, results = sent + 1, results + 1
        for sock, when in beats.items():
            if when <= now:
                job = running.get(sock, "")
                sock.send_multipart(protocol.encode(
                    protocol.Heartbeat("busy" if job else "idle", job)))  # fmt: skip
                beats[sock] = now + HEARTBEAT_S
                sent += 1
    for sock in socks:
        sock.close()
    with counts.lock:
        counts.sent += sent
        counts.received += received
        counts.results += results
        counts.acks += acks


def _payload(sha: str, settings: dict[str, Any], jobs: int) -> dict[str, Any]:
    return {"name": "load", "targets": {"agents": ["load-*"], "tags": {}},
            "jobs": [{"model": "tiny", "sha256": sha, "settings": settings, "repeat": r}
                     for r in range(jobs)],
            "timeout_s": 60.0, "retries": 0, "spec": {}}  # fmt: skip


def _watch(proc: psutil.Process, until: threading.Event, timeout: float) -> int:
    """Peak RSS (bytes) of `proc`, sampled every 0.5 s until `until` is set or `timeout`."""
    peak, deadline = 0, time.monotonic() + timeout
    while not until.wait(0.5) and time.monotonic() < deadline:  # a sampling period
        peak = max(peak, proc.memory_info().rss)
    return max(peak, proc.memory_info().rss)


def measure_load(folder: Path, duration: float = DURATION_S) -> dict[str, float]:
    """Run the load; returns rates, counts and the collector's resource use."""
    model = tiny_model(folder)
    run = measure(model, MeasureSettings(warmup_runs=1, warmup_seconds=0,
                                         stop=StopRule(SAMPLES, 0.0, 30.0)))  # fmt: skip
    doc, lat = run.document, np.asarray(run.latencies_ns, dtype=np.int64)
    data = model.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    db = folder / "load.sqlite"
    argv = [sys.executable, "-m", "collector", "serve", "--bind", "tcp://127.0.0.1:0",
            "--db", str(db), "--heartbeat", str(HEARTBEAT_S), "--no-calibrate"]  # fmt: skip
    server = Child(argv, "collector")
    endpoint = server.expect(r"listening on (tcp://\S+)", 60).group(1)
    proc = psutil.Process(server.proc.pid)
    stop, finished, counts = threading.Event(), threading.Event(), _Counts()
    names = [f"load-{i:03d}" for i in range(AGENTS)]
    threads = [
        threading.Thread(target=_sim_agents,
                         args=(endpoint, names[i::THREADS], doc, lat, stop, counts))
        for i in range(THREADS)
    ]  # fmt: skip
    jobs = max(1, int(duration / JOB_S) - 1)
    try:
        for t in threads:
            t.start()
        for name in names:
            server.seen(rf"agent {name} registered", 60)
        with Client(endpoint) as client:
            client.send(protocol.ModelData(sha, data))
            cpu0, t0 = proc.cpu_times(), time.perf_counter()
            client.request(protocol.SubmitCampaign(_payload(sha, doc["settings"], jobs)),
                           protocol.CampaignAccepted)  # fmt: skip
        watcher: list[int] = []
        w = threading.Thread(target=lambda: watcher.append(_watch(proc, finished, duration * 3)))
        w.start()
        try:
            server.seen(r"campaign \w+ finished", duration * 3)
        finally:
            wall, cpu1 = time.perf_counter() - t0, proc.cpu_times()
            finished.set()
            w.join(timeout=10)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        server.stop()
    store = Store(db)
    try:
        stored = sum(r.status == "ok" for r in store.result_rows())
        total = len(store.jobs())
    finally:
        store.close()
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {
        "agents": AGENTS, "jobs": total, "stored": stored, "lost": total - stored,
        "acks": counts.acks, "results_sent": counts.results,
        "missing": sum("missed its heartbeats" in line for line in server.lines),
        "wall_s": wall, "msgs_per_s": (counts.sent + counts.received) / wall,
        "results_per_s": counts.acks / wall, "cpu_pct": 100 * cpu / wall,
        "samples": lat.size, "rss_mb": (watcher[0] if watcher else 0) / 2**20,
    }  # fmt: skip


def run(duration: float = DURATION_S) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        m = measure_load(Path(tmp), duration)
    detail = (
        f"{m['agents']:.0f} simulated agents (heartbeat {HEARTBEAT_S:g} s, "
        f"{m['samples']:.0f} latencies per result) for {m['wall_s']:.0f} s: "
        f"{m['msgs_per_s']:.0f} messages/s in and out, "
        f"{m['results_per_s']:.0f} results/s acked; {m['stored']:.0f}/{m['jobs']:.0f} jobs "
        f"stored, {m['acks']:.0f} acks for {m['results_sent']:.0f} results sent; collector "
        f"CPU {m['cpu_pct']:.0f} % of one core, peak RSS {m['rss_mb']:.0f} MiB"
    )
    return [
        Figure("load: agents falsely marked missing", m["missing"], 0, True, detail),
        Figure("load: lost results", m["lost"], 0, True, detail),
    ]


if __name__ == "__main__":
    for figure in run(float(sys.argv[1]) if len(sys.argv) > 1 else DURATION_S):
        print(figure.row())
