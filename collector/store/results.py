"""Reads and writes of results: the document, its raw latencies, and its per-op kernel times.

Raw steady-state latencies are kept whole, packed losslessly (collector/store/latency_blob.py). A
result, its latencies and its job's next state commit in one transaction, so a job is never
done without its result, nor a result stored twice. A job keeps every attempt that measured:
an invalid result with invalid retries left stays as an attempt (``job_result`` 0) and the job
goes back to the queue; the job's result (``job_result`` 1) is its valid one, or its last.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from collector.store import latency_blob
from collector.store.jobs import Jobs
from collector.store.rows import JobRow, JobState, OpTimeRow, ResultRow, typed
from shared.errors import StoreError


class Results(Jobs):
    """The ``results``, ``latencies`` and ``op_times`` tables; a result completes a job."""

    def record_result(
        self,
        job_id: str,
        result_id: str,
        device_id: str,
        document: dict[str, Any],
        latencies_ns: np.ndarray,
        job: JobRow | None = None,
    ) -> JobState | None:
        """Store a result and move its job on, atomically: done, or queued again (at the back
        of its agent's queue) when the result is invalid and the job has invalid retries left.
        Returns the job's new state; None (and nothing written) when this result id is already
        stored or the job is already finished. `job`: its row, when the caller just read it."""
        job = job if job is not None else self.job(job_id)
        if job is None:
            raise StoreError(f"no job {job_id}")
        if job.state.terminal or self.result_job(result_id) == job_id:
            return None  # a redelivery; another job's id raises IntegrityError (the caller
            # checks that first: collector.server.handlers.jobs)
        valid = bool(document.get("valid", True))
        retry = not valid and job.invalid_attempts < job.retry_invalid
        packed = latency_blob.pack(latencies_ns)
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO results (result_id, job_id, campaign_id, agent_id, device_id, "
                "model_sha256, status, error_kind, error, document_json, received_at, "
                "attempt, job_result, valid, invalid_reasons) "
                "VALUES (?, ?, ?, ?, ?, ?, 'ok', NULL, NULL, ?, ?, ?, ?, ?, ?)",
                (result_id, job_id, job.campaign_id, job.agent_id, device_id,
                 job.model_sha256, json.dumps(document), now, self.next_attempt(job_id),
                 0 if retry else 1, int(valid),
                 json.dumps(list(document.get("invalid_reasons") or []))),
            )  # fmt: skip
            db.execute(
                "INSERT INTO latencies VALUES (?, ?, ?, ?, ?)",
                (result_id, int(latencies_ns.size), packed.data, packed.base, packed.width),
            )
            if retry:  # not a failed attempt: the failure budget is for crashes
                db.execute(
                    "UPDATE jobs SET state='queued', invalid_attempts=invalid_attempts+1, "
                    "attempts=MAX(attempts-1, 0), created=?, updated=? WHERE job_id=?",
                    (now, now, job_id),
                )
            else:
                db.execute("UPDATE jobs SET state='done', updated=? WHERE job_id=?",
                           (now, job_id))  # fmt: skip
        return JobState.QUEUED if retry else JobState.DONE

    def verdicts(self, campaign_id: str | None) -> list[tuple[str, int | None, str | None]]:
        """(status, valid, invalid_reasons JSON) of each job's result in a campaign (None:
        every campaign): what the counts show, without reading a single document."""
        if campaign_id is None:
            cur = self.db.execute(
                "SELECT status, valid, invalid_reasons FROM results WHERE job_result=1"
            )
        else:
            cur = self.db.execute(
                "SELECT status, valid, invalid_reasons FROM results "
                "WHERE campaign_id=? AND job_result=1",
                (campaign_id,),
            )
        return [(str(r[0]), r[1], r[2]) for r in cur]

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

    def result_rows(self, campaign_id: str | None = None) -> list[ResultRow]:
        """Results joined with their job, model and agent, oldest first."""
        where, args = ("WHERE r.campaign_id=?", (campaign_id,)) if campaign_id else ("", ())
        cur = self.db.execute(
            "SELECT r.*, j.settings_json, j.repeat, j.model_name, a.descriptor_json "
            "FROM results r JOIN jobs j USING (job_id) "
            "LEFT JOIN agents a ON a.agent_id = r.agent_id "
            f"{where} ORDER BY r.received_at, r.result_id",
            args,
        )
        return [typed(ResultRow, row) for row in cur]

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

    def op_time_rows(self, campaign_id: str | None = None) -> list[OpTimeRow]:
        if campaign_id is None:
            cur = self.db.execute("SELECT * FROM op_times")
        else:
            cur = self.db.execute(
                "SELECT o.* FROM op_times o JOIN results r USING (result_id) WHERE r.campaign_id=?",
                (campaign_id,),
            )
        return [typed(OpTimeRow, row) for row in cur]
