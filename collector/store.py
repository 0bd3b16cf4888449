"""The durable store: SQLite in WAL mode, one transaction per state change.

A result is acknowledged to the agent only after its transaction commits with
synchronous=FULL, so an acknowledged result survives a crash of the collector or the machine.
Raw steady-state latencies are kept whole, packed losslessly (collector/latency_blob.py). Every
job's state lives here too, so a restarted collector resumes every unfinished campaign.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collector import latency_blob
from shared.errors import StoreError

# 3: latencies packed (base, width), 2's read as width 8; op_times.folded_flops (BN in convs)
STORE_SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, descriptor_json TEXT NOT NULL,
    tags_json TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL, size_bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id TEXT PRIMARY KEY, name TEXT NOT NULL, spec_json TEXT NOT NULL,
    state TEXT NOT NULL, created REAL NOT NULL, finished REAL);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, agent_id TEXT NOT NULL,
    model_sha256 TEXT NOT NULL, model_name TEXT NOT NULL, settings_json TEXT NOT NULL,
    repeat INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL, timeout_s REAL NOT NULL, errors_json TEXT NOT NULL,
    created REAL NOT NULL, started REAL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    result_id TEXT PRIMARY KEY, job_id TEXT NOT NULL UNIQUE, campaign_id TEXT NOT NULL,
    agent_id TEXT NOT NULL, device_id TEXT NOT NULL, model_sha256 TEXT NOT NULL,
    status TEXT NOT NULL, error_kind TEXT, error TEXT, document_json TEXT,
    received_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS latencies (
    result_id TEXT PRIMARY KEY REFERENCES results(result_id), n INTEGER NOT NULL,
    ns BLOB NOT NULL, base INTEGER NOT NULL DEFAULT 0, width INTEGER NOT NULL DEFAULT 8);
CREATE TABLE IF NOT EXISTS model_costs (
    sha256 TEXT NOT NULL, input_shapes TEXT NOT NULL, convention TEXT, cost_json TEXT,
    error TEXT, PRIMARY KEY (sha256, input_shapes));
CREATE TABLE IF NOT EXISTS op_times (
    result_id TEXT NOT NULL, node_name TEXT NOT NULL, op_type TEXT NOT NULL, provider TEXT,
    kernel_time_us REAL NOT NULL, flops INTEGER, macs INTEGER, bytes INTEGER, fused_from TEXT,
    depthwise INTEGER, folded_flops INTEGER, PRIMARY KEY (result_id, node_name));
CREATE TABLE IF NOT EXISTS calibrations (
    agent_id TEXT NOT NULL, threads INTEGER NOT NULL, peak_gflops REAL, bandwidth_gbs REAL,
    measured_at REAL NOT NULL, detail_json TEXT NOT NULL, PRIMARY KEY (agent_id, threads));
DROP INDEX IF EXISTS jobs_by_agent_state;
CREATE INDEX IF NOT EXISTS jobs_by_campaign ON jobs(campaign_id, state);
CREATE INDEX IF NOT EXISTS jobs_in_order ON jobs(agent_id, state, campaign_id, created, job_id);
-- jobs_in_order also serves every (agent_id, state) lookup; schema 2's narrower index goes
"""

JOB_STATES = ("queued", "running", "done", "failed")
TERMINAL = ("done", "failed")


class Store:
    """All reads and writes of the collector's database (one connection, one thread)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self._in_batch = False
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
        elif int(row[0]) == 2:  # add the packing columns; old rows are width 8, base 0
            with self.transaction() as db:
                db.execute("ALTER TABLE latencies ADD COLUMN base INTEGER NOT NULL DEFAULT 0")
                db.execute("ALTER TABLE latencies ADD COLUMN width INTEGER NOT NULL DEFAULT 8")
                db.execute("ALTER TABLE op_times ADD COLUMN folded_flops INTEGER")
                db.execute("UPDATE meta SET value='3' WHERE key='schema'")
        elif int(row[0]) != STORE_SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has store schema {row[0]}, this flopgap reads {STORE_SCHEMA_VERSION}",
                hint="use the flopgap that wrote it, or start a new database",
            )

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error; inside a batch, a savepoint
        (rolled back alone on error) whose changes commit with the batch."""
        if self._in_batch:
            self.db.execute("SAVEPOINT change")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK TO change")
                self.db.execute("RELEASE change")
                raise
            self.db.execute("RELEASE change")
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: every change inside commits (one fsync) when the block ends.

        The caller must not acknowledge anything done inside before the block has exited.
        """
        self.db.execute("BEGIN IMMEDIATE")
        self._in_batch = True
        try:
            yield
        except BaseException:
            self._in_batch = False
            self.db.execute("ROLLBACK")
            raise
        self._in_batch = False
        self.db.execute("COMMIT")

    def integrity_ok(self) -> bool:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # --- agents and models ------------------------------------------------------------------

    def upsert_agent(self, agent_id: str, descriptor: dict[str, Any], tags: dict[str, str]) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO agents VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(agent_id) DO UPDATE SET "
                "device_id=excluded.device_id, descriptor_json=excluded.descriptor_json, "
                "tags_json=excluded.tags_json, last_seen=excluded.last_seen",
                (agent_id, str(descriptor.get("device_id", "")), json.dumps(descriptor),
                 json.dumps(tags), now, now),
            )  # fmt: skip

    def agents(self) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM agents ORDER BY agent_id"))

    def add_model(self, sha256: str, name: str, path: str, size_bytes: int) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO models VALUES (?, ?, ?, ?)", (sha256, name, path, size_bytes)
            )

    def model(self, sha256: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM models WHERE sha256=?", (sha256,)).fetchone()

    # --- campaigns and jobs -----------------------------------------------------------------

    def add_campaign(self, campaign_id: str, name: str, spec: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO campaigns VALUES (?, ?, ?, 'running', ?, NULL)",
                (campaign_id, name, json.dumps(spec), time.time()),
            )

    def campaigns(self, state: str | None = None) -> list[sqlite3.Row]:
        if state is None:
            return list(self.db.execute("SELECT * FROM campaigns ORDER BY created"))
        return list(
            self.db.execute("SELECT * FROM campaigns WHERE state=? ORDER BY created", (state,))
        )

    def campaign_by_name(self, name: str) -> sqlite3.Row | None:
        return self.db.execute(
            "SELECT * FROM campaigns WHERE name=? OR campaign_id=? ORDER BY created DESC",
            (name, name),
        ).fetchone()

    def finish_campaign_if_done(self, campaign_id: str) -> bool:
        """Mark a campaign done once every job is terminal; True when it just finished."""
        open_job = self.db.execute(  # an index seek: called once per result, so no COUNT(*)
            "SELECT 1 FROM jobs WHERE campaign_id=? AND state IN ('queued', 'running') LIMIT 1",
            (campaign_id,),
        ).fetchone()
        if open_job is not None:
            return False
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE campaigns SET state='done', finished=? WHERE campaign_id=? "
                "AND state='running'",
                (time.time(), campaign_id),
            )
        return cur.rowcount > 0

    def add_jobs(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert jobs: (job_id, campaign_id, agent_id, sha256, model_name, settings, repeat,
        max_attempts, timeout_s), all in one transaction."""
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO jobs VALUES "
                "(?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, '[]', ?, NULL, ?)",
                [(*r[:5], json.dumps(r[5], sort_keys=True), *r[6:], now, now) for r in rows],
            )

    def job(self, job_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM jobs WHERE job_id=?", (job_id,)).fetchone()

    def jobs(self, **where: str) -> list[sqlite3.Row]:
        """Jobs filtered by equality on columns, e.g. jobs(agent_id="a", state="queued")."""
        clause = " AND ".join(f"{k}=?" for k in where) or "1=1"
        return list(
            self.db.execute(
                f"SELECT * FROM jobs WHERE {clause} ORDER BY created, job_id",
                tuple(where.values()),
            )
        )

    def next_queued_job(self, agent_id: str) -> sqlite3.Row | None:
        """The agent's oldest queued job of the oldest running campaign that has one.

        One index seek per running campaign (jobs_in_order), not a sort of every queued job:
        this runs after each result, and a campaign may queue thousands per agent."""
        running = self.db.execute(
            "SELECT campaign_id FROM campaigns WHERE state='running' ORDER BY created"
        ).fetchall()
        for (campaign_id,) in running:
            job = self.db.execute(
                "SELECT * FROM jobs WHERE agent_id=? AND state='queued' AND campaign_id=? "
                "ORDER BY created, job_id LIMIT 1",
                (agent_id, campaign_id),
            ).fetchone()
            if job is not None:
                return job
        return None

    def start_job(self, job_id: str) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET state='running', attempts=attempts+1, started=?, updated=? "
                "WHERE job_id=?",
                (now, now, job_id),
            )

    def mark_running(self, job_id: str) -> None:
        """An agent says it is running this job (after a collector restart): no new attempt."""
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET state='running', updated=? WHERE job_id=? AND state='queued'",
                (time.time(), job_id),
            )

    def unstart_job(self, job_id: str) -> None:
        """Undo a dispatch that never reached the agent: queued again, attempt not counted."""
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET state='queued', attempts=MAX(attempts-1, 0), updated=? "
                "WHERE job_id=? AND state='running'",
                (time.time(), job_id),
            )

    def requeue_running(self) -> int:
        """At start-up: jobs left running by a previous collector go back to the queue."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE jobs SET state='queued', updated=? WHERE state='running'", (time.time(),)
            )
        return cur.rowcount

    def fail_attempt(self, job_id: str, failure: Failure) -> str:
        """Record a failed attempt; requeue while attempts remain, else store it as the job's
        error result, in one transaction. Returns the job's new state."""
        job = self.job(job_id)
        if job is None or job["state"] in TERMINAL:
            return job["state"] if job is not None else "missing"
        errors = [*json.loads(job["errors_json"]), f"{failure.kind}: {failure.error}"]
        final = job["attempts"] >= job["max_attempts"]
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET state=?, errors_json=?, updated=? WHERE job_id=?",
                ("failed" if final else "queued", json.dumps(errors), now, job_id),
            )
            if final:
                db.execute(
                    "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, 'error', ?, ?, NULL, ?)",
                    (failure.result_id, job_id, job["campaign_id"], job["agent_id"],
                     failure.device_id, job["model_sha256"], failure.kind,
                     " | ".join(errors), now),
                )  # fmt: skip
        return "failed" if final else "queued"

    # --- results ----------------------------------------------------------------------------

    def record_result(
        self,
        job_id: str,
        result_id: str,
        device_id: str,
        document: dict[str, Any],
        latencies_ns: np.ndarray,
        job: sqlite3.Row | None = None,
    ) -> bool:
        """Store a result and mark its job done, atomically. False (and nothing written) when
        this result id is already stored or the job already has a result. `job`: its row, when
        the caller has just read it."""
        job = job if job is not None else self.job(job_id)
        if job is None:
            raise StoreError(f"no job {job_id}")
        packed = latency_blob.pack(latencies_ns)
        try:
            with self.transaction() as db:
                db.execute(
                    "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, 'ok', NULL, NULL, ?, ?)",
                    (result_id, job_id, job["campaign_id"], job["agent_id"], device_id,
                     job["model_sha256"], json.dumps(document), time.time()),
                )  # fmt: skip
                db.execute(
                    "INSERT INTO latencies VALUES (?, ?, ?, ?, ?)",
                    (result_id, int(latencies_ns.size), packed.data, packed.base, packed.width),
                )
                db.execute(
                    "UPDATE jobs SET state='done', updated=? WHERE job_id=?", (time.time(), job_id)
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def latencies(self, result_id: str) -> np.ndarray:
        row = self.db.execute(
            "SELECT n, base, width, ns FROM latencies WHERE result_id=?", (result_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no latencies stored for result {result_id}")
        try:
            return latency_blob.unpack(row[0], row[1], row[2], row[3])
        except StoreError as exc:
            raise StoreError(f"result {result_id}: {exc.message}", hint=exc.hint) from None

    def result_rows(self, campaign_id: str | None = None) -> list[sqlite3.Row]:
        """Results joined with their job, model and agent, oldest first."""
        where, args = ("WHERE r.campaign_id=?", (campaign_id,)) if campaign_id else ("", ())
        return list(
            self.db.execute(
                "SELECT r.*, j.settings_json, j.repeat, j.model_name, a.descriptor_json "
                "FROM results r JOIN jobs j USING (job_id) "
                "LEFT JOIN agents a ON a.agent_id = r.agent_id "
                f"{where} ORDER BY r.received_at, r.result_id",
                args,
            )
        )

    # --- per-op times and device calibration -------------------------------------------------

    def put_op_times(self, result_id: str, rows: list[dict[str, Any]]) -> None:
        """Per-node kernel times of a profiled result, joined to theory (None where unknown)."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO op_times VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(result_id, r["node_name"], r["op_type"], r.get("provider"),
                  float(r["kernel_time_us"]), r.get("flops"), r.get("macs"), r.get("bytes"),
                  ";".join(r.get("fused_from") or []), r.get("depthwise"),
                  r.get("folded_flops")) for r in rows],
            )  # fmt: skip

    def op_time_rows(self, campaign_id: str | None = None) -> list[sqlite3.Row]:
        if campaign_id is None:
            return list(self.db.execute("SELECT * FROM op_times"))
        return list(self.db.execute(
            "SELECT o.* FROM op_times o JOIN results r USING (result_id) WHERE r.campaign_id=?",
            (campaign_id,)))  # fmt: skip

    def put_calibration(self, agent_id: str, calibration: dict[str, Any]) -> None:
        """The device's measured peak FLOP/s and bandwidth at a thread count (latest wins)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO calibrations VALUES (?, ?, ?, ?, ?, ?)",
                (agent_id, int(calibration["threads"]), calibration.get("peak_gflops"),
                 calibration.get("bandwidth_gbs"), time.time(), json.dumps(calibration)),
            )  # fmt: skip

    def calibration_rows(self) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM calibrations"))

    # --- theoretical costs ------------------------------------------------------------------

    def cost(self, sha256: str, input_shapes: str) -> sqlite3.Row | None:
        """The stored cost of a model at canonical-JSON input shapes, if counted."""
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
                (sha256, input_shapes, convention, None if cost is None else json.dumps(cost),
                 error),
            )  # fmt: skip


@dataclass(frozen=True)
class Failure:
    """One failed attempt of a job, as the agent (or the collector's liveness check) saw it."""

    result_id: str
    device_id: str
    kind: str
    error: str
