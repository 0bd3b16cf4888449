"""Reads and writes of jobs: the queue, dispatch, requeue, and failed attempts with retries.

Every job's state lives in the database, so a restarted collector resumes every unfinished
campaign: ``requeue_running`` puts back what a previous collector left running.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from collector.store.connection import Database
from collector.store.rows import JobRow, JobState, typed


@dataclass(frozen=True)
class Failure:
    """One failed attempt of a job, as the agent (or the collector's liveness check) saw it."""

    result_id: str
    device_id: str
    kind: str
    error: str


class Jobs(Database):
    """The ``jobs`` table, and the error result a job's last failed attempt leaves."""

    def add_jobs(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert jobs: (job_id, campaign_id, agent_id, sha256, model_name, settings, repeat,
        max_attempts, timeout_s[, retry_invalid]), all in one transaction. A job id stored
        already is skipped: collectors sharing a store may expand a campaign for the same agent
        at once, and its job ids are derived from (campaign, agent, index)."""
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO jobs (job_id, campaign_id, agent_id, model_sha256, model_name, "
                "settings_json, repeat, state, attempts, max_attempts, timeout_s, errors_json, "
                "created, started, updated, retry_invalid, invalid_attempts) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, '[]', ?, NULL, ?, ?, 0) "
                "ON CONFLICT(job_id) DO NOTHING",  # two collectors expanding for one agent
                [(*r[:5], json.dumps(r[5], sort_keys=True), *r[6:9], now, now,
                  int(r[9]) if len(r) > 9 else 0) for r in rows],
            )  # fmt: skip

    def job(self, job_id: str) -> JobRow | None:
        row = self.db.execute("SELECT * FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        return None if row is None else typed(JobRow, row)

    def jobs(self, **where: str) -> list[JobRow]:
        """Jobs filtered by equality on columns, e.g. jobs(agent_id="a", state=JobState.QUEUED)."""
        unknown = set(where) - set(JobRow._fields)
        if unknown:  # the names go into the SQL text: only column names may
            raise TypeError(f"jobs() has no column {', '.join(sorted(unknown))}")
        clause = " AND ".join(f"{k}=?" for k in where) or "1=1"
        cur = self.db.execute(
            f"SELECT * FROM jobs WHERE {clause} ORDER BY created, job_id",
            tuple(str(v) for v in where.values()),
        )
        return [typed(JobRow, row) for row in cur]

    def next_queued_job(self, agent_id: str) -> JobRow | None:
        """The agent's oldest queued job of the oldest running campaign that has one.

        One index seek per running campaign (jobs_in_order), not a sort of every queued job:
        this runs after each result, and a campaign may queue thousands per agent. Inside a
        transaction on PostgreSQL the row is locked (SKIP LOCKED passes over one another
        collector is claiming): `claim_job` reads and starts it that way."""
        running = self.db.execute(
            "SELECT campaign_id FROM campaigns WHERE state='running' ORDER BY created"
        ).fetchall()
        for (campaign_id,) in running:
            job = self.db.execute(
                "SELECT * FROM jobs WHERE agent_id=? AND state='queued' AND campaign_id=? "
                "ORDER BY created, job_id LIMIT 1" + self.claim_lock,
                (agent_id, campaign_id),
            ).fetchone()
            if job is not None:
                return typed(JobRow, job)
        return None

    def claim_job(self, agent_id: str) -> JobRow | None:
        """Pick the agent's next queued job and start it in one transaction, so of several
        collectors on one database only one ever starts a job (the row stays locked until
        the commit). Returns the job as started, or None when nothing is queued."""
        now = time.time()
        with self.transaction() as db:
            job = self.next_queued_job(agent_id)
            if job is None:
                return None
            db.execute(
                "UPDATE jobs SET state='running', attempts=attempts+1, started=?, updated=? "
                "WHERE job_id=?",
                (now, now, job.job_id),
            )
        return self.job(job.job_id)

    def start_job(self, job_id: str) -> bool:
        """Claim a queued job for dispatch; False when it is no longer queued (another
        collector sharing the store claimed or finished it since it was read)."""
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE jobs SET state='running', attempts=attempts+1, started=?, updated=? "
                "WHERE job_id=? AND state='queued'",
                (now, now, job_id),
            )
        return cur.rowcount > 0

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

    def next_attempt(self, job_id: str) -> int:
        """The attempt number the job's next stored result gets (1 for its first)."""
        (count,) = self.db.execute(
            "SELECT COUNT(*) FROM results WHERE job_id=?", (job_id,)
        ).fetchone()
        return int(count) + 1

    def result_job(self, result_id: str) -> str | None:
        """The job a result id is bound to (the job it was first stored for), or None."""
        row = self.db.execute(
            "SELECT job_id FROM results WHERE result_id=?", (result_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def fail_attempt(self, job_id: str, failure: Failure) -> JobState | None:
        """Record a failed attempt; requeue while attempts remain, else store it as the job's
        error result, in one transaction. Returns the job's new state (None: no such job)."""
        job = self.job(job_id)
        if job is None or job.state.terminal:
            return None if job is None else job.state
        errors = [*job.errors, f"{failure.kind}: {failure.error}"]
        final = job.attempts >= job.max_attempts
        state = JobState.FAILED if final else JobState.QUEUED
        now = time.time()
        result_id = failure.result_id
        if final and self.result_job(result_id) is not None:  # bound already: a fresh id
            result_id = uuid.uuid4().hex
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET state=?, errors_json=?, updated=? WHERE job_id=?",
                (state.value, json.dumps(errors), now, job_id),
            )
            if final:  # the error is the job's result; invalid attempts before it stay attempts
                db.execute(
                    "INSERT INTO results (result_id, job_id, campaign_id, agent_id, device_id, "
                    "model_sha256, status, error_kind, error, document_json, received_at, "
                    "attempt, job_result) VALUES (?, ?, ?, ?, ?, ?, 'error', ?, ?, NULL, ?, ?, 1)",
                    (result_id, job_id, job.campaign_id, job.agent_id,
                     failure.device_id, job.model_sha256, failure.kind, " | ".join(errors), now,
                     self.next_attempt(job_id)),
                )  # fmt: skip
        return state
