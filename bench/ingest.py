"""Collector ingest: results per second and raw latency samples per second from 8 simulated
agents on loopback into the durable store, against raw pyzmq PUSH/PULL of the same bytes in
the same run (targets: >= 0.5 of raw; >= 1,000,000 samples/s), and the same ingest into a
PostgreSQL store beside the SQLite one (a real server started for the run, fsync and
synchronous_commit on, as in production; skipped when no PostgreSQL binary is found).

The simulated agents speak the real protocol in one process (8 threads, one DEALER each):
they register, answer every Job at once with a Result carrying a real result document and
10,000 latencies, and count acks. The collector is a real `flopgap serve` subprocess that
validates, commits (WAL, synchronous=FULL) and acknowledges each result before the next job.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import zmq

from agent.engine.measure import MeasureSettings, measure
from agent.engine.timing import StopRule
from bench.figure import Figure
from bench.fleet_helpers import collector, tiny_model
from collector.client import Client
from collector.store import latency_blob
from shared import protocol
from shared.result import check_document
from shared.stats import summarize
from tests.pg_server import PgServer
from tests.pg_server import missing_reason as pg_missing_reason

AGENTS = 8
JOBS_PER_AGENT = 200
SAMPLES = 10_000
_JOB, _RESULT = "J" * 32, "R" * 32  # placeholders as long as the uuid4 hex ids they stand for


def _document(model: Path) -> dict[str, Any]:
    settings = MeasureSettings(warmup_runs=1, warmup_seconds=0, stop=StopRule(64, 0.0, 5.0))
    return measure(model, settings).document


def _sim_agent(
    endpoint: str,
    name: str,
    doc: dict[str, Any],
    lat: np.ndarray,
    done: threading.Event,
    counts: dict[str, int],
) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    sock.send_multipart(
        protocol.encode(
            protocol.Register(
                name, "sim", {"device_id": name, "providers": ["CPUExecutionProvider"]}, {}, ""
            )
        )
    )
    # Encoded once: each Result is the template with its job and result ids written in, so
    # the agents' side costs what the raw PUSH/PULL side costs and the collector is measured.
    header, *bulk = protocol.encode(protocol.Result(_JOB, _RESULT, doc, lat))
    acks = 0
    while not done.is_set() and sock.poll(5000):
        msg = protocol.decode(sock.recv_multipart())
        if isinstance(msg, protocol.Job):
            ids = header.replace(_JOB.encode(), msg.job_id.encode(), 1)
            sock.send_multipart([ids.replace(_RESULT.encode(), uuid.uuid4().hex.encode(), 1),
                                 *bulk])  # fmt: skip
        elif isinstance(msg, protocol.Ack):
            acks += 1
    counts[name] = acks
    sock.close()


def _payload(sha: str, settings: dict[str, Any]) -> dict[str, Any]:
    jobs = [{"model": "tiny", "sha256": sha, "settings": settings, "repeat": r}
            for r in range(JOBS_PER_AGENT)]  # fmt: skip
    return {"name": "ingest", "targets": {"agents": ["sim-*"], "tags": {}}, "jobs": jobs,
            "timeout_s": 60.0, "retries": 0, "spec": {}}  # fmt: skip


def _collector_rate(
    folder: Path, doc: dict[str, Any], lat: np.ndarray, db: str | None = None
) -> tuple[float, int, dict[str, int]]:
    """Results/s of a real collector storing into `db` (a URL), or a SQLite file in `folder`."""
    folder.mkdir()
    model = tiny_model(folder)
    data = model.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    server, endpoint = collector(folder / "ingest.sqlite" if db is None else Path(db))
    done, counts = threading.Event(), dict[str, int]()
    threads = [
        threading.Thread(target=_sim_agent, args=(endpoint, f"sim-{i}", doc, lat, done, counts))
        for i in range(AGENTS)
    ]
    try:
        for t in threads:
            t.start()
        for i in range(AGENTS):
            server.seen(rf"agent sim-{i} registered", 30)
        with Client(endpoint) as client:
            client.send(protocol.ModelData(sha, data))
            t0 = time.perf_counter()
            cpu0 = sum(psutil.Process(server.proc.pid).cpu_times()[:2])
            client.request(
                protocol.SubmitCampaign(_payload(sha, doc["settings"])), protocol.CampaignAccepted
            )
            server.seen(r"campaign \w+ finished", 600)
            wall = time.perf_counter() - t0
            cpu = sum(psutil.Process(server.proc.pid).cpu_times()[:2]) - cpu0
            status = client.request(protocol.StatusRequest(""), protocol.Status)
    finally:
        done.set()
        for t in threads:
            t.join(timeout=10)
        server.stop()
    total = AGENTS * JOBS_PER_AGENT
    assert isinstance(status, protocol.Status)
    counters = {**status.status["counters"], "cpu_us": int(cpu / total * 1e6)}
    return total / wall, sum(counts.values()), counters


def _floor(folder: Path, frames: list[bytes], n: int) -> float:
    """Results/s of the least a durable collector must do per result, in one thread without
    sockets: decode and validate the frames, pack the latencies, insert the document and
    them with bare sqlite3, commit every AGENTS results (WAL, synchronous=FULL). What a
    collector does beyond this (receiving, replying, job state) is its own overhead."""
    db = sqlite3.connect(folder, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, doc TEXT, base INT, width INT, ns BLOB)")
    t0 = time.perf_counter()
    for _ in range(n // AGENTS):
        db.execute("BEGIN")
        for _ in range(AGENTS):
            msg = protocol.decode(frames)
            assert isinstance(msg, protocol.Result)
            check_document(msg.document)
            row = (json.dumps(msg.document), *latency_blob.pack(msg.latencies_ns))
            db.execute("INSERT INTO r (doc, base, width, ns) VALUES (?, ?, ?, ?)", row)
        db.execute("COMMIT")
    wall = time.perf_counter() - t0
    db.close()
    return n // AGENTS * AGENTS / wall


def _raw_rate(frames: list[bytes], n: int) -> float:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    pull = ctx.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")

    def push() -> None:
        sock = ctx.socket(zmq.PUSH)
        sock.connect(f"tcp://127.0.0.1:{port}")
        for _ in range(n // AGENTS):
            sock.send_multipart(frames)
        sock.close(linger=5000)

    threads = [threading.Thread(target=push) for _ in range(AGENTS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for _ in range(n // AGENTS * AGENTS):
        pull.recv_multipart()
    wall = time.perf_counter() - t0
    pull.close()
    return n / wall


def run(rounds: int = 3) -> list[Figure]:
    """Collector (into SQLite, then PostgreSQL), durable floor and raw PUSH/PULL in turn,
    `rounds` times; the best of each (throughput on a shared machine is lowered by
    neighbours, never raised)."""
    best = {"collector": 0.0, "postgres": 0.0, "floor": 0.0, "raw": 0.0}
    missing = pg_missing_reason()
    pg = PgServer(durable=True).start() if missing is None else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            doc = _document(tiny_model(folder))
            lat = np.random.default_rng(0).integers(50_000, 60_000, SAMPLES).astype(np.int64)
            doc = {**doc, "latency_ms": summarize(lat)}  # the collector checks n == len(lat)
            frames = protocol.encode(protocol.Result(_JOB, _RESULT, doc, lat))
            for r in range(rounds):
                rate, acks, counters = _collector_rate(folder / f"c{r}", doc, lat)
                best["collector"] = max(best["collector"], rate)
                if pg is not None:
                    url = pg.new_database("ingest")
                    pg_rate, _, _ = _collector_rate(folder / f"pg{r}", doc, lat, url)
                    best["postgres"] = max(best["postgres"], pg_rate)
                floor = _floor(folder / f"floor{r}.sqlite", frames, AGENTS * JOBS_PER_AGENT)
                best["floor"] = max(best["floor"], floor)
                best["raw"] = max(best["raw"], _raw_rate(frames, AGENTS * JOBS_PER_AGENT))
    finally:
        if pg is not None:
            pg.stop()
    rate, floor, raw, pg_best = best["collector"], best["floor"], best["raw"], best["postgres"]
    size = sum(map(len, frames))
    detail = (
        f"{AGENTS} simulated agents x {JOBS_PER_AGENT} results of {size / 1e3:.0f} kB "
        f"({SAMPLES} samples each), best of {rounds} rounds; collector {rate:.0f} results/s "
        f"({acks} acks, {counters['results'] / max(counters['commits'], 1):.1f} results per "
        f"commit and {counters['cpu_us']} us of collector CPU per result in the last round), "
        f"raw PUSH/PULL {raw:.0f} msgs/s; one-thread floor (decode, "
        f"validate, pack, insert with bare sqlite3, commit per {AGENTS}, WAL + "
        f"synchronous=FULL; no sockets) {floor:.0f} results/s = {floor / raw:.2f} of raw; "
        f"collector = {rate / floor:.2f} of that floor"
    )
    side = (
        f"same ingest, same run: SQLite {rate:.0f} results/s, PostgreSQL {pg_best:.0f} "
        f"results/s (a local server, fsync and synchronous_commit on, one collector, group "
        f"commit per batch as for SQLite), best of {rounds} rounds"
        if pg is not None
        else f"PostgreSQL not measured: {missing}"
    )
    print(f"  ingest results/s: SQLite {rate:.0f}  PostgreSQL {pg_best:.0f}", flush=True)
    return [
        Figure("ingest: collector results/s over raw PUSH/PULL", rate / raw, 0.5, False, detail),
        Figure(
            "ingest: raw latency samples/s into the store", rate * SAMPLES, 1_000_000, False, detail
        ),
        Figure("ingest: PostgreSQL results/s over SQLite's", pg_best / rate, 0.5, False, side),
    ]
