"""The store's latency packing, its schema upgrades and its job order, on real SQLite files and
(through `store_url`) on a real PostgreSQL database: one suite for both backends; the upgrade
tests, which rewrite a SQLite file by hand, stay SQLite's."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from collector.store import (
    STORE_SCHEMA_VERSION,
    CampaignState,
    Failure,
    JobState,
    ResultStatus,
    Store,
    latency_blob,
    schema,
)
from collector.store.db_errors import DATABASE_ERRORS
from collector.store.location import is_postgres
from collector.store.rows import JobRow, ModelRow, typed
from shared.errors import StoreError

INT64_MAX = np.iinfo(np.int64).max


@settings(max_examples=300, deadline=None)
@given(arrays(np.int64, st.integers(0, 300), elements=st.integers(0, INT64_MAX)))
def test_packing_gives_back_every_value(values: np.ndarray) -> None:
    packed = latency_blob.pack(values)
    back = latency_blob.unpack(values.size, packed.base, packed.width, packed.data)
    assert back.dtype == np.int64
    np.testing.assert_array_equal(back, values)


@pytest.mark.parametrize(
    ("low", "high", "width"),
    [(5, 6, 1), (50_000, 60_000, 2), (10**6, 17 * 10**6, 3), (0, 2**32, 4), (0, 2**40, 5)],
)
def test_packing_uses_the_fewest_whole_bytes(low: int, high: int, width: int) -> None:
    values = np.random.default_rng(1).integers(low, high, 1000, dtype=np.int64)
    values[0], values[1] = low, high - 1  # the span decides the width
    packed = latency_blob.pack(values)
    assert (packed.base, packed.width, len(packed.data)) == (low, width, 1000 * width)


def test_a_blob_of_the_wrong_size_is_reported_as_damage() -> None:
    packed = latency_blob.pack(np.arange(100, dtype=np.int64))
    with pytest.raises(StoreError, match="cannot hold 100 values"):
        latency_blob.unpack(100, packed.base, packed.width, packed.data[:-1])


def _job(job_id: str, campaign: str) -> tuple[object, ...]:
    return (job_id, campaign, "a1", "f" * 64, "tiny", {"threads": 1}, 0, 1, 60.0)


def test_results_round_trip_packed_and_smaller(store_url: str) -> None:
    store = Store(store_url)
    store.add_campaign("c1", "c", {})
    store.add_jobs([_job("j1", "c1")])
    lat = np.random.default_rng(0).integers(50_000, 60_000, 10_000, dtype=np.int64)
    assert store.record_result("j1", "r1", "d", {"valid": True}, lat)
    np.testing.assert_array_equal(store.latencies("r1"), lat)
    size = store.db.execute("SELECT length(ns) FROM latencies").fetchone()[0]
    assert size == 2 * lat.size  # a 10 us spread: two bytes per value, not eight


def test_a_schema_2_database_is_upgraded_and_reads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    store = Store(path)
    store.add_campaign("c1", "c", {})
    store.add_jobs([_job("j1", "c1")])
    lat = np.arange(1000, 2000, dtype=np.int64)
    store.record_result("j1", "r1", "d", {"valid": True}, lat)
    store.close()
    # Rewrite it as schema 2 wrote it: no packing columns, raw little-endian int64.
    db = sqlite3.connect(path)
    db.executescript(
        "ALTER TABLE latencies DROP COLUMN base; ALTER TABLE latencies DROP COLUMN width;"
        "ALTER TABLE op_times DROP COLUMN folded_flops;"
        "UPDATE meta SET value='2' WHERE key='schema';"
    )
    db.execute("UPDATE latencies SET ns=?", (lat.astype("<i8").tobytes(),))
    db.commit()
    db.close()
    store = Store(path)
    np.testing.assert_array_equal(store.latencies("r1"), lat)
    assert store.db.execute("SELECT value FROM meta").fetchone()[0] == str(STORE_SCHEMA_VERSION)


def test_a_newer_schema_is_refused(store_url: str) -> None:
    store = Store(store_url)
    store.db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    store.close()
    with pytest.raises(StoreError, match="store schema 99") as err:
        Store(store_url)
    assert "\n" not in err.value.message and err.value.hint


def test_next_job_is_the_oldest_campaigns_oldest_job(store_url: str) -> None:
    store = Store(store_url)
    store.add_campaign("first", "first", {})
    store.add_campaign("second", "second", {})
    store.add_jobs([_job("s1", "second")])
    store.add_jobs([_job("f1", "first"), _job("f0", "first")])  # same created: by job id
    order = []
    while (job := store.next_queued_job("a1")) is not None:
        order.append(job.job_id)
        store.start_job(job.job_id)
    assert order == ["f0", "f1", "s1"]
    assert store.next_queued_job("another agent") is None


def test_reads_are_typed_rows_with_state_enums(store_url: str) -> None:
    store = Store(store_url)
    campaign = store.add_campaign("c1", "nightly", {"name": "nightly"})
    assert store.resolve_campaign("nightly") == campaign
    assert campaign.state is CampaignState.RUNNING and campaign.spec == {"name": "nightly"}
    store.add_jobs([_job("j1", "c1")])
    (job,) = store.jobs(campaign_id="c1", state=JobState.QUEUED)
    assert isinstance(job, JobRow) and job.state is JobState.QUEUED and not job.state.terminal
    store.start_job(job.job_id)
    assert store.fail_attempt("j1", Failure("r1", "dev", "crash", "boom")) is JobState.FAILED
    failed = store.job("j1")
    assert failed is not None and failed.state is JobState.FAILED and failed.errors
    (result,) = store.result_rows("c1")
    assert result.status is ResultStatus.ERROR and result.document is None
    assert store.finish_campaign_if_done("c1")
    assert [c.state for c in store.campaigns()] == [CampaignState.DONE]
    with pytest.raises(TypeError, match="no column"):
        store.jobs(**{"state=state OR 1": "x"})  # a filter name is never spliced into SQL


def test_a_row_type_that_does_not_match_its_query_raises(tmp_path: Path) -> None:
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    row = db.execute("SELECT 'a' AS sha256, 'n' AS name, 'p' AS path").fetchone()
    with pytest.raises(TypeError, match="ModelRow"):
        typed(ModelRow, row)


def test_a_schema_3_database_keeps_its_results_as_each_jobs_only_attempt(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite"
    old = schema.SCHEMA.replace(schema.RESULTS_TABLE.format(name="results"), _V3_RESULTS)
    old = old.replace(",\n    retry_invalid INTEGER NOT NULL DEFAULT 0, invalid_attempts INTEGER "
                      "NOT NULL DEFAULT 0)", ")")  # fmt: skip
    assert "retry_invalid" not in old and "job_id TEXT NOT NULL UNIQUE" in old
    db = sqlite3.connect(path)
    db.executescript(old + "INSERT INTO meta VALUES ('schema', '3');")
    db.execute("INSERT INTO campaigns VALUES ('c1', 'c', '{}', 'done', 0, 1)")
    db.execute("INSERT INTO jobs VALUES ('j1', 'c1', 'a1', 's', 'm', '{}', 0, 'done', 1, 1, 60, "
               "'[]', 0, 0, 1)")  # fmt: skip
    doc = '{"valid": false, "invalid_reasons": ["other processes used 1.00 CPU cores"]}'
    db.execute("INSERT INTO results VALUES ('r1', 'j1', 'c1', 'a1', 'd', 's', 'ok', NULL, NULL, "
               "?, 5)", (doc,))  # fmt: skip
    db.execute("INSERT INTO latencies VALUES ('r1', 1, ?, 0, 8)", (np.ones(1, "<i8").tobytes(),))
    db.commit()
    db.close()
    store = Store(path)
    (result,) = store.result_rows()
    assert (result.attempt, result.job_result, result.valid) == (1, 1, 0)
    assert json.loads(result.invalid_reasons or "[]") == ["other processes used 1.00 CPU cores"]
    job = store.job("j1")
    assert job is not None and (job.retry_invalid, job.invalid_attempts) == (0, 0)
    assert store.integrity_ok()


_V3_RESULTS = """
CREATE TABLE IF NOT EXISTS results (
    result_id TEXT PRIMARY KEY, job_id TEXT NOT NULL UNIQUE, campaign_id TEXT NOT NULL,
    agent_id TEXT NOT NULL, device_id TEXT NOT NULL, model_sha256 TEXT NOT NULL,
    status TEXT NOT NULL, error_kind TEXT, error TEXT, document_json TEXT,
    received_at REAL NOT NULL);
"""


def test_an_invalid_result_is_kept_and_its_job_measured_again(store_url: str) -> None:
    store = Store(store_url)
    store.add_campaign("c1", "c", {})
    store.add_jobs([(*_job("j1", "c1"), 1)])  # retry_invalid = 1
    lat = np.ones(10, dtype=np.int64)
    bad = {"valid": False, "invalid_reasons": ["timings too noisy: robust CV 30%"]}
    store.start_job("j1")
    assert store.record_result("j1", "r1", "d", bad, lat) is JobState.QUEUED
    job = store.job("j1")
    assert job is not None and job.state is JobState.QUEUED and job.invalid_attempts == 1
    assert job.attempts == 0  # an invalid result is not a failed attempt
    store.start_job("j1")
    assert store.record_result("j1", "r2", "d", bad, lat) is JobState.DONE  # no retry left
    assert store.record_result("j1", "r3", "d", {"valid": True}, lat) is None  # job finished
    rows = {r.result_id: r for r in store.result_rows()}
    assert set(rows) == {"r1", "r2"}
    assert [(rows[r].attempt, rows[r].job_result) for r in ("r1", "r2")] == [(1, 0), (2, 1)]
    assert store.verdicts("c1") == [("ok", 0, '["timings too noisy: robust CV 30%"]')]


def test_a_failed_change_in_a_batch_rolls_back_alone(store_url: str) -> None:
    store = Store(store_url)
    store.add_campaign("c1", "c", {})
    with store.batch():
        store.add_jobs([_job("j1", "c1")])
        with pytest.raises(DATABASE_ERRORS), store.message():
            store.add_jobs([_job("j2", "c1")])
            store.add_campaign("c1", "c", {})  # the same campaign id again: the message rolls back
        store.add_jobs([_job("j3", "c1")])
    assert [j.job_id for j in store.jobs(campaign_id="c1")] == ["j1", "j3"]
    with pytest.raises(RuntimeError), store.batch():
        store.add_jobs([_job("j4", "c1")])
        raise RuntimeError("the batch fails before its commit")
    assert store.job("j4") is None


def test_a_result_rolled_back_leaves_no_latencies_and_its_job_unfinished(store_url: str) -> None:
    """The result, its latencies row and its job's state are one change: a message savepoint
    or a whole batch rolled back after the result was written keeps none of them, and the
    agent's redelivery is then stored as the first."""
    store = Store(store_url)
    store.add_campaign("c1", "c", {})
    store.add_jobs([_job("j1", "c1"), _job("j2", "c1")])
    lat = np.arange(1000, 2000, dtype=np.int64)
    with store.batch():
        with pytest.raises(DATABASE_ERRORS), store.message():
            assert store.record_result("j1", "r1", "d", {"valid": True}, lat) is JobState.DONE
            store.add_campaign("c1", "c", {})  # fails after the result: the message rolls back
        assert store.record_result("j2", "r2", "d", {"valid": True}, lat) is JobState.DONE
    with pytest.raises(RuntimeError), store.batch():
        store.record_result("j1", "r3", "d", {"valid": True}, lat)
        raise RuntimeError("the batch fails before its commit")
    ids = [r[0] for r in store.db.execute("SELECT result_id FROM latencies")]
    assert ids == ["r2"] and [r.result_id for r in store.result_rows()] == ["r2"]
    assert store.job("j1").state is JobState.QUEUED  # type: ignore[union-attr]
    assert store.record_result("j1", "r1", "d", {"valid": True}, lat) is JobState.DONE
    np.testing.assert_array_equal(store.latencies("r1"), lat)
    assert store.integrity_ok()


def test_claiming_starts_each_job_once_and_the_store_stays_consistent(store_url: str) -> None:
    store = Store(store_url)
    store.add_campaign("c1", "c", {})
    store.add_jobs([_job("j1", "c1"), _job("j2", "c1")])
    claimed = [store.claim_job("a1"), store.claim_job("a1"), store.claim_job("a1")]
    assert [j.job_id if j else None for j in claimed] == ["j1", "j2", None]
    assert all(j is None or (j.state is JobState.RUNNING and j.attempts == 1) for j in claimed)
    lat = np.arange(100, 200, dtype=np.int64)
    assert store.record_result("j1", "r1", "d", {"valid": True}, lat) is JobState.DONE
    assert store.record_result("j1", "r1", "d", {"valid": True}, lat) is None  # redelivered
    assert store.integrity_ok()
    store.db.execute("UPDATE jobs SET state='done' WHERE job_id='j2'")  # done, yet no result
    assert store.integrity_ok() is (not is_postgres(store_url))  # PRAGMA sees no damage here


def test_upserts_keep_one_row_per_key(store_url: str) -> None:
    store = Store(store_url)
    store.add_model("f" * 64, "tiny", "/m/tiny.onnx", 10)
    store.add_model("f" * 64, "other name", "/m/x.onnx", 11)  # INSERT OR IGNORE: first stays
    assert store.model("f" * 64) == ModelRow("f" * 64, "tiny", "/m/tiny.onnx", 10)
    store.put_cost("f" * 64, "[]", "fvcore", {"flops": 2**40}, None)
    store.put_cost("f" * 64, "[]", "fvcore", None, "unsupported op")  # INSERT OR REPLACE
    cost = store.cost("f" * 64, "[]")
    assert cost is not None and (cost.cost, cost.error) == (None, "unsupported op")
    op = {"node_name": "mm", "op_type": "MatMul", "kernel_time_us": 1.5, "flops": 2**40}
    store.put_op_times("r1", [op])
    store.put_op_times("r1", [{**op, "kernel_time_us": 2.5}])
    (row,) = store.op_time_rows()
    assert (row.kernel_time_us, row.flops) == (2.5, 2**40)  # 64-bit counts survive
    store.put_calibration("a1", {"threads": 1, "peak_gflops": 1.0})
    store.put_calibration("a1", {"threads": 1, "peak_gflops": 2.0})
    assert [c.peak_gflops for c in store.calibration_rows()] == [2.0]
