"""The store's predictors table: versions per device key, one row per training data, on real
SQLite files (reopened, and older files that predate the table) and, through `store_url`, on a
real PostgreSQL database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from collector.store import STORE_SCHEMA_VERSION, Store
from collector.store.rows import PredictorRow
from shared.errors import StoreError
from shared.version import __version__

KEY_A = "laptop|ort=1.32.0|threads=1|CPUExecutionProvider|all"
KEY_B = "pi5|ort=1.32.0|threads=4|CPUExecutionProvider|all"
PAYLOAD = {
    "format": 1,
    "kernels": {"Conv": {"model": "tree\nversion=v4\nnum_class=1\n", "samples": 812}},
    "correction": {"scale": 0.8312345678901234, "offset_ms": -0.0125},
    "families": ["Conv", "Gemm"],
    "unicode": "µs ±10 %",
    "nested": [[1, 2.5, None, True], {"z": 1, "a": 2}],
}


def test_versions_increase_per_key_and_keys_are_independent(store_url: str) -> None:
    store = Store(store_url)
    a1 = store.put_predictor(KEY_A, "h1", 100, 3, PAYLOAD)
    b1 = store.put_predictor(KEY_B, "h1", 50, 2, PAYLOAD)
    a2 = store.put_predictor(KEY_A, "h2", 150, 4, PAYLOAD)
    assert (a1.version, a2.version, b1.version) == (1, 2, 1)
    assert len({a1.predictor_id, a2.predictor_id, b1.predictor_id}) == 3
    assert store.predictor(KEY_A) == a2 and store.predictor(KEY_B) == b1
    assert store.predictor(KEY_A, data_hash="h1") == a1
    assert store.predictor(KEY_A, data_hash="h3") is None and store.predictor("nobody") is None
    assert [r.version for r in store.predictor_rows(KEY_A)] == [1, 2]
    assert [r.predictor_id for r in store.predictor_rows()] == [
        a1.predictor_id, b1.predictor_id, a2.predictor_id
    ]  # fmt: skip
    assert isinstance(a2, PredictorRow) and a2.flopgap_version == __version__
    assert (a2.samples, a2.models) == (150, 4) and a2.trained_at >= a1.trained_at


def test_the_same_data_is_not_stored_twice(store_url: str) -> None:
    store = Store(store_url)
    first = store.put_predictor(KEY_A, "h1", 100, 3, PAYLOAD)
    again = store.put_predictor(KEY_A, "h1", 999, 9, {"other": True})
    assert again == first and again.payload == PAYLOAD
    assert len(store.predictor_rows(KEY_A)) == 1
    assert store.put_predictor(KEY_A, "h2", 1, 1, PAYLOAD).version == 2


def test_predictors_survive_reopening_and_payloads_round_trip(store_url: str) -> None:
    path = store_url
    store = Store(path)
    put = store.put_predictor(KEY_A, "h1", 100, 3, PAYLOAD)
    store.close()
    reopened = Store(path)
    row = reopened.predictor(KEY_A)
    assert row == put
    assert row is not None and row.payload == PAYLOAD
    assert list(row.payload) == list(PAYLOAD)  # key order kept too
    assert row.payload["correction"]["scale"] == PAYLOAD["correction"]["scale"]  # type: ignore[index]
    assert reopened.put_predictor(KEY_A, "h2", 1, 1, PAYLOAD).version == 2


def test_a_payload_that_is_not_plain_json_is_refused(store_url: str) -> None:
    store = Store(store_url)
    with pytest.raises(StoreError, match="not plain JSON"):
        store.put_predictor(KEY_A, "h1", 1, 1, {"bad": float("nan")})
    with pytest.raises(StoreError, match="not plain JSON"):
        store.put_predictor(KEY_A, "h1", 1, 1, {"bad": object()})
    assert store.predictor_rows() == []


def test_an_older_store_file_gains_the_table(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)  # as a schema-2 store wrote it: no predictors, no packing columns
    db.executescript(
        "DROP TABLE predictors; ALTER TABLE latencies DROP COLUMN base;"
        "ALTER TABLE latencies DROP COLUMN width; ALTER TABLE op_times DROP COLUMN folded_flops;"
        "UPDATE meta SET value='2' WHERE key='schema';"
    )
    db.commit()
    db.close()
    store = Store(path)
    assert store.db.execute("SELECT value FROM meta").fetchone()[0] == str(STORE_SCHEMA_VERSION)
    assert store.put_predictor(KEY_A, "h1", 1, 1, PAYLOAD).version == 1
    store.close()
    db = sqlite3.connect(path)  # a current store from before the table
    db.execute("DROP TABLE predictors")
    db.commit()
    db.close()
    assert Store(path).predictor_rows() == []


def test_dropping_predictors_keeps_the_named_data_and_other_keys(store_url: str) -> None:
    store = Store(store_url)
    for digest in ("h1", "h2", "h3"):
        store.put_predictor(KEY_A, digest, 10, 1, PAYLOAD)
    store.put_predictor(KEY_B, "h1", 10, 1, PAYLOAD)
    assert store.drop_predictors(KEY_A, {"h2"}) == 2
    assert [r.data_hash for r in store.predictor_rows(KEY_A)] == ["h2"]
    assert [r.data_hash for r in store.predictor_rows(KEY_B)] == ["h1"]
    assert store.drop_predictors(KEY_B, set()) == 1 and store.predictor_rows(KEY_B) == []
    store.close()
