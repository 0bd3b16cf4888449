"""The durable result store: SQLite in WAL mode, one transaction per state change.

A result is acknowledged to the agent only after its transaction commits with
synchronous=FULL, so an acknowledged result survives a crash of the collector or the machine.
Raw steady-state latencies are kept whole, as little-endian int64 blobs.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import StoreError

STORE_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, descriptor_json TEXT NOT NULL,
    tags_json TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL, size_bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, model_sha256 TEXT NOT NULL,
    settings_json TEXT NOT NULL, state TEXT NOT NULL, error TEXT,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    result_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, agent_id TEXT NOT NULL,
    device_id TEXT NOT NULL, model_sha256 TEXT NOT NULL, status TEXT NOT NULL,
    error_kind TEXT, error TEXT, document_json TEXT, received_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS latencies (
    result_id TEXT PRIMARY KEY REFERENCES results(result_id), n INTEGER NOT NULL,
    ns BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS model_costs (
    sha256 TEXT NOT NULL, input_shapes TEXT NOT NULL, convention TEXT, cost_json TEXT,
    error TEXT, PRIMARY KEY (sha256, input_shapes));
CREATE INDEX IF NOT EXISTS jobs_by_agent_state ON jobs(agent_id, state);
"""

JOB_STATES = ("queued", "running", "done", "failed")


class Store:
    """All reads and writes of the collector's database."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot open result database {self.path}: {exc}",
                hint="pass another --db, or move the damaged file away",
            ) from exc

    def _check_version(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(STORE_SCHEMA_VERSION),))
        elif int(row[0]) != STORE_SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has store schema {row[0]}, this flopgap reads {STORE_SCHEMA_VERSION}",
                hint="use the flopgap that wrote it",
            )

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def upsert_agent(self, agent_id: str, descriptor: dict[str, Any], tags: dict[str, str]) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO agents VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(agent_id) DO UPDATE SET "
                "device_id=excluded.device_id, descriptor_json=excluded.descriptor_json, "
                "tags_json=excluded.tags_json, last_seen=excluded.last_seen",
                (
                    agent_id,
                    str(descriptor.get("device_id", "")),
                    json.dumps(descriptor),
                    json.dumps(tags),
                    now,
                    now,
                ),
            )

    def add_model(self, sha256: str, name: str, path: str, size_bytes: int) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO models VALUES (?, ?, ?, ?)", (sha256, name, path, size_bytes)
            )

    def add_job(self, job_id: str, agent_id: str, sha256: str, settings: dict[str, Any]) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, 'queued', NULL, ?, ?)",
                (job_id, agent_id, sha256, json.dumps(settings, sort_keys=True), now, now),
            )

    def set_job_state(self, job_id: str, state: str, error: str | None = None) -> None:
        assert state in JOB_STATES
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET state=?, error=?, updated=? WHERE job_id=?",
                (state, error, time.time(), job_id),
            )

    def job(self, job_id: str) -> sqlite3.Row:
        row = self.db.execute("SELECT * FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        if row is None:
            raise StoreError(f"no job {job_id}")
        return row

    def jobs(self, agent_id: str | None = None, state: str | None = None) -> list[sqlite3.Row]:
        query, args = "SELECT * FROM jobs WHERE 1=1", list[str]()
        if agent_id is not None:
            query, args = query + " AND agent_id=?", [*args, agent_id]
        if state is not None:
            query, args = query + " AND state=?", [*args, state]
        return list(self.db.execute(query + " ORDER BY created, job_id", args))

    def record_result(
        self,
        job_id: str,
        result_id: str,
        agent_id: str,
        device_id: str,
        sha256: str,
        document: dict[str, Any],
        latencies_ns: np.ndarray,
    ) -> bool:
        """Store a result and mark its job done, atomically; False if already stored."""
        blob = np.ascontiguousarray(latencies_ns, dtype="<i8").tobytes()
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM results WHERE result_id=?", (result_id,)).fetchone():
                return False
            db.execute(
                "INSERT INTO results VALUES (?, ?, ?, ?, ?, 'ok', NULL, NULL, ?, ?)",
                (result_id, job_id, agent_id, device_id, sha256, json.dumps(document), time.time()),
            )
            db.execute(
                "INSERT INTO latencies VALUES (?, ?, ?)", (result_id, int(latencies_ns.size), blob)
            )
            db.execute(
                "UPDATE jobs SET state='done', updated=? WHERE job_id=?", (time.time(), job_id)
            )
        return True

    def record_failure(
        self,
        job_id: str,
        result_id: str,
        agent_id: str,
        device_id: str,
        sha256: str,
        kind: str,
        error: str,
    ) -> bool:
        """Store an error result and mark its job failed, atomically; False if a duplicate."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM results WHERE result_id=?", (result_id,)).fetchone():
                return False
            db.execute(
                "INSERT INTO results VALUES (?, ?, ?, ?, ?, 'error', ?, ?, NULL, ?)",
                (result_id, job_id, agent_id, device_id, sha256, kind, error, time.time()),
            )
            db.execute(
                "UPDATE jobs SET state='failed', error=?, updated=? WHERE job_id=?",
                (error, time.time(), job_id),
            )
        return True

    def cost(self, sha256: str, input_shapes: str) -> sqlite3.Row | None:
        """The stored theoretical cost of a model at canonical-JSON input shapes, if counted."""
        return self.db.execute(
            "SELECT * FROM model_costs WHERE sha256=? AND input_shapes=?", (sha256, input_shapes)
        ).fetchone()

    def put_cost(
        self,
        sha256: str,
        input_shapes: str,
        convention: str | None,
        cost: dict[str, Any] | None,
        error: str | None,
    ) -> None:
        """Store a model's counts (or why it could not be counted) once."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO model_costs VALUES (?, ?, ?, ?, ?)",
                (
                    sha256,
                    input_shapes,
                    convention,
                    None if cost is None else json.dumps(cost),
                    error,
                ),
            )

    def latencies(self, result_id: str) -> np.ndarray:
        row = self.db.execute(
            "SELECT n, ns FROM latencies WHERE result_id=?", (result_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no latencies stored for result {result_id}")
        values = np.frombuffer(row[1], dtype="<i8")
        if values.size != row[0]:
            raise StoreError(f"latency blob of result {result_id} is damaged")
        return values.astype(np.int64)

    def result_rows(self) -> list[sqlite3.Row]:
        """Every result joined with its job settings and model, oldest first."""
        return list(
            self.db.execute(
                "SELECT r.*, j.settings_json, m.name AS model_name, a.descriptor_json "
                "FROM results r JOIN jobs j USING (job_id) "
                "LEFT JOIN models m ON m.sha256 = r.model_sha256 "
                "LEFT JOIN agents a ON a.agent_id = r.agent_id "
                "ORDER BY r.received_at, r.result_id"
            )
        )
