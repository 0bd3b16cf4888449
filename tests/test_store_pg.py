"""What only a PostgreSQL store has: each way it cannot open is one line with the next step,
before any socket is bound; a peer's bad value is input, not store trouble; and a real
campaign run by a real collector and agent lands in PostgreSQL and reads back as CSV.

The store's everyday behaviour on PostgreSQL is tests/test_store.py's, through `store_url`.
"""

from __future__ import annotations

import csv
import socket
from pathlib import Path

import numpy as np
import pytest

from collector.export import write_csv
from collector.store import JobState, Store
from collector.store.db_errors import INPUT_ERRORS
from collector.store.model_files import ModelStore
from shared.errors import StoreError
from tests.conftest import REPO, Runner
from tests.fleet_helpers import start_agent, start_collector, write_campaign
from tests.pg_server import PgServer

psycopg = pytest.importorskip("psycopg")


def _closed_port() -> int:
    with socket.socket() as sock:  # bound, never listening: a connection is refused
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_line(exc: StoreError) -> str:
    text = str(exc)
    assert "\n" not in text and exc.hint, text
    return text


def test_an_unreachable_server_is_one_line_and_nothing_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(StoreError, match="cannot reach PostgreSQL") as err:
        Store(f"postgresql://flopgap:secret@127.0.0.1:{_closed_port()}/results")
    assert "secret" not in _one_line(err.value)  # the password never reaches a log
    assert "host and port" in (err.value.hint or "")
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_password_and_an_unknown_database_say_which(pg_server: PgServer) -> None:
    with pytest.raises(StoreError, match="password") as err:
        Store(pg_server.url("postgres", password="wrong"))
    assert "refused" in _one_line(err.value) and "password" in (err.value.hint or "")
    with pytest.raises(StoreError, match="does not exist") as err:
        Store(pg_server.url("no_such_db"))
    assert "createdb" in (err.value.hint or "")


def _role(pg_server: PgServer, name: str) -> str:
    with pg_server.admin() as conn:
        conn.execute(f"DROP ROLE IF EXISTS {name}")
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw'")
    return name


def test_a_role_without_privileges_is_told_what_to_grant(pg_server: PgServer) -> None:
    url = pg_server.new_database()
    database = url.rsplit("/", 1)[1]
    role = _role(pg_server, "no_create")
    as_role = pg_server.url(database, user=role, password="pw")
    with pytest.raises(StoreError, match="may not create") as err:
        Store(as_role)  # PostgreSQL 15 grants no CREATE on schema public to other roles
    assert "GRANT CREATE" in (err.value.hint or "") and _one_line(err.value)
    Store(url).close()  # the owner makes the tables
    with pytest.raises(StoreError, match="may not read and write") as err:
        Store(as_role)
    assert f"TO {role}" in (err.value.hint or "")
    with pg_server.admin(database) as conn:
        conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
    store = Store(as_role)  # tables made by the owner, used by a role that may not alter them
    store.add_campaign("c1", "c", {})
    assert [c.campaign_id for c in store.campaigns()] == ["c1"]


def test_a_newer_schema_and_an_unreachable_server_stop_serve_before_binding(
    pg_url: str, collector_cli: Runner
) -> None:
    store = Store(pg_url)
    store.db.execute("UPDATE meta SET value='5' WHERE key='schema'")
    store.close()
    closed = f"postgresql://flopgap@127.0.0.1:{_closed_port()}/r"
    for url, says in ((pg_url, "store schema 5"), (closed, "cannot reach PostgreSQL")):
        proc = collector_cli("serve", "--db", url, "--bind", "tcp://127.0.0.1:0", timeout=60)
        assert proc.returncode != 0
        lines = [line for line in proc.stderr.splitlines() if says in line]
        assert len(lines) == 1 and " -- " in lines[0], proc.stderr  # the message and its hint
        assert "listening" not in proc.stdout + proc.stderr
    assert not (REPO / "postgresql:").exists()


def test_a_value_postgresql_cannot_hold_is_the_peers_input(pg_url: str) -> None:
    store = Store(pg_url)
    with pytest.raises(INPUT_ERRORS):
        store.add_campaign("c1", "a\x00name", {})  # PostgreSQL text holds no NUL
    with pytest.raises(INPUT_ERRORS):
        store.add_jobs([("j1", "c1", "a1", "f" * 64, "m", {}, 2**70, 1, 60.0)])
    assert store.campaigns() == [] and store.jobs() == []


def test_model_bytes_are_shared_through_the_database(pg_url: str, tmp_path: Path) -> None:
    Store(pg_url).close()  # serve opens the store (which makes model_files) first
    models = ModelStore(Path(pg_url).with_suffix(".models"))  # as serve names it
    assert str(models.folder).startswith(str(tmp_path))  # the URL's local cache folder
    sha256, _ = models.put(b"onnx bytes")
    models.path(sha256).unlink()  # another host's collector has no local copy
    assert sha256 in models and models.read(sha256) == b"onnx bytes"
    assert models.path(sha256).read_bytes() == b"onnx bytes"  # cached for FLOP counting


def test_a_campaign_stores_into_postgresql_and_exports(
    pg_url: str, tiny_model: Path, tmp_path: Path, collector_cli: Runner
) -> None:
    config = write_campaign(tmp_path, [str(tiny_model)], [1, 2], name="pg")
    collector, endpoint = start_collector(pg_url)  # type: ignore[arg-type]
    agent = start_agent(endpoint, "pg-agent", tmp_path)
    try:
        collector.expect(r"agent pg-agent registered", 30)
        proc = collector_cli("campaign", "run", config, "--collector", endpoint, timeout=120)
        assert proc.returncode in (0, 7), proc.stdout + proc.stderr
    finally:
        assert agent.stop() == 0, agent.tail(20)
        collector.stop()
    store = Store(pg_url)
    jobs = store.jobs()
    assert len(jobs) == 2 and all(j.state is JobState.DONE for j in jobs)
    rows = [r for r in store.result_rows() if r.job_result == 1]
    assert sorted(r.job_id for r in rows) == sorted(j.job_id for j in jobs)
    assert store.integrity_ok()
    assert all(store.latencies(r.result_id).size >= 64 for r in rows)
    out = tmp_path / "out.csv"
    assert write_csv(store, out) == len(store.result_rows())
    with out.open() as handle:
        exported = list(csv.DictReader(handle))
    assert {r["result_id"] for r in exported} == {r.result_id for r in store.result_rows()}
    assert not (REPO / "postgresql:").exists()


def test_latencies_round_trip_exactly(pg_url: str) -> None:
    store = Store(pg_url)
    store.add_campaign("c1", "c", {})
    store.add_jobs([("j1", "c1", "a1", "f" * 64, "m", {}, 0, 1, 60.0)])
    lat = np.array([3 * 10**9, 5 * 10**9, 2**62], dtype=np.int64)  # beyond 32 bits
    store.record_result("j1", "r1", "d", {"valid": True}, lat)
    np.testing.assert_array_equal(Store(pg_url).latencies("r1"), lat)
