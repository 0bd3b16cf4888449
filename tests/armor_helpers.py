"""What the armor property suite needs around a running collector: raw DEALER peers (with or
without CURVE keys), bounded request/reply, and the store's consistency query.

The consistency query reads the collector's SQLite file read-only while it serves (WAL mode
lets a reader in beside the writer), so a check never takes the writer's lock.
"""

from __future__ import annotations

import json
import math
import sqlite3
import sys
from pathlib import Path
from typing import Any

import zmq

from collector.procs import Child
from collector.store import consistency
from shared import keys, protocol
from shared.transport import configure_client

RECV_TIMEOUT_MS = 10_000  # every wait on the collector is bounded


def raw_dealer(endpoint: str, peer: keys.PeerKeys | None) -> zmq.Socket[bytes]:
    """A DEALER that sends whatever frames it is given: a hostile or honest peer's socket."""
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDTIMEO, RECV_TIMEOUT_MS)
    configure_client(sock, peer)
    sock.connect(endpoint)
    return sock


def replies(sock: zmq.Socket[bytes], wait_ms: int = 0) -> list[protocol.Message | Exception]:
    """Every reply waiting on `sock` (the first one waited for up to `wait_ms`), decoded;
    an undecodable reply is returned as its error, never raised."""
    out: list[protocol.Message | Exception] = []
    timeout = wait_ms
    while sock.poll(timeout, zmq.POLLIN):
        frames = sock.recv_multipart()
        try:
            out.append(protocol.decode(frames))
        except Exception as exc:  # the collector sent something we cannot read: a finding
            out.append(exc)
        timeout = 0
    return out


def request(
    sock: zmq.Socket[bytes], msg: protocol.Message, expect: type[protocol.Message]
) -> protocol.Message | None:
    """Send `msg` and wait (bounded) for the first reply of type `expect`; other replies on
    the way (a Job after a Welcome, say) are skipped. None if none came in time."""
    sock.send_multipart(protocol.encode(msg))
    while sock.poll(RECV_TIMEOUT_MS, zmq.POLLIN):
        try:
            reply = protocol.decode(sock.recv_multipart())
        except Exception:
            continue
        if isinstance(reply, expect):
            return reply
    return None


# Each query returns rows that break one rule; the rule is the key.
# Beyond the store's own rules (collector.store.consistency): SQLite's JSON functions.
_RULES = {
    **consistency.RULES,
    "an ok result whose document's latency_ms.n is not its latency count": (
        "SELECT r.result_id FROM results r JOIN latencies l ON l.result_id = r.result_id "
        "WHERE json_valid(r.document_json) = 0 "
        "OR json_extract(r.document_json, '$.latency_ms.n') IS NOT l.n"
    ),
}


def _bad_percentiles(db: sqlite3.Connection) -> list[str]:
    """Ok results whose p50 is not a positive finite number, or whose percentiles are not
    ordered (min <= p50 <= p90 <= p95 <= p99 <= max)."""
    bad = []
    rows = db.execute(
        "SELECT result_id, json_extract(document_json, '$.latency_ms') FROM results "
        "WHERE status = 'ok' AND json_valid(document_json)"
    )
    for result_id, text in rows:
        try:
            lat: Any = json.loads(text) if text else None
            order = [lat[k] for k in ("min", "p50", "p90", "p95", "p99", "max")]
            ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in order)
            ok = ok and all(math.isfinite(v) and v > 0 for v in order)
            ok = ok and order == sorted(order)
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            bad.append(str(result_id))
    return bad


def consistency_problems(db_path: Path) -> list[str]:
    """What is wrong with the store, one line per broken rule (empty when clean)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        problems = []
        integrity = [row[0] for row in db.execute("PRAGMA integrity_check")]
        if integrity != ["ok"]:
            problems.append(f"integrity_check: {integrity[:5]}")
        for rule, query in _RULES.items():
            rows = [str(row[0])[:40] for row in db.execute(query).fetchmany(5)]
            if rows:
                problems.append(f"{rule}: {rows}")
        bad = _bad_percentiles(db)
        if bad:
            problems.append(f"an ok result with nonsense percentiles: {bad[:5]}")
        return problems
    finally:
        db.close()


def start_debug_collector(db: Path, key_dir: Path | None) -> tuple[Child, str]:
    """`flopgap --debug serve` on a free loopback port (with `--keys` when given): --debug,
    so a crash leaves its whole traceback in the log the failure report quotes."""
    # A high peer rate: the suite attacks the handlers, and a malformed message costs its peer
    # PENALTY_TOKENS, so at the default rate most mutations would be dropped unread.
    argv = [sys.executable, "-m", "collector", "--debug", "serve", "--bind", "tcp://127.0.0.1:0",
            "--db", str(db), "--heartbeat", "0.5", "--no-calibrate",
            "--peer-rate", "100000", "--peer-burst", "100000"]  # fmt: skip
    if key_dir is not None:
        argv += ["--keys", str(key_dir)]
    child = Child(argv, "collector")
    return child, child.expect(r"listening on (tcp://\S+)", 30).group(1)
