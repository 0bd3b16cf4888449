"""`flopgap export --parquet-dataset`: read back by DuckDB as the issue says, from a store a real
collector and agent filled with two campaigns (one renamed to hold a `/` and a `=`)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from collector.store import ResultStatus, Store
from tests.conftest import _runner, matmul_graph, runtime_failure_graph, save_model
from tests.fleet_helpers import start_agent, start_collector, write_campaign

duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed (pip install -e .[dev])")

pytestmark = pytest.mark.integration

ODD_NAME = "lab/beta=2"  # a name no campaign file allows, given by rename: must stay one folder
collector_cli = _runner("collector")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dataset")
    save_model(matmul_graph(), root / "tiny.onnx")
    _failing_model(root / "runtime_fail.onnx")
    configs = [write_campaign(root, ["tiny.onnx"], threads=[1, 2], name="alpha"),
               write_campaign(root, ["tiny.onnx", "runtime_fail.onnx"], threads=[1],
                              name="beta", extra="")]  # fmt: skip
    path = root / "results.sqlite"
    collector, endpoint = start_collector(path)
    agent = start_agent(endpoint, "board-1", root)
    try:
        collector.expect(r"agent board-1 registered", 30)
        for config in configs:
            proc = collector_cli("campaign", "run", config, "--collector", endpoint)
            # 1: beta's failing model; 7: results voided by a loaded machine
            assert proc.returncode in (0, 1, 7), proc.stdout + proc.stderr
    finally:
        assert agent.stop() == 0, agent.tail(20)
        collector.stop()
    store = Store(path)
    try:
        store.rename_campaign(store.resolve_campaign("beta").campaign_id, ODD_NAME)
    finally:
        store.close()
    return path


def _failing_model(path: Path) -> None:
    """Loads, then fails at run time: an error result, which has no latencies."""
    save_model(runtime_failure_graph(), path)


def _export(db: Path, out: Path, *extra: str) -> None:
    proc = collector_cli("export", "--db", db, "--parquet-dataset", out, *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _read(glob: Path, columns: str) -> list[tuple[object, ...]]:
    rel = duckdb.sql(
        f"SELECT {columns} FROM read_parquet('{glob}', hive_partitioning = true) ORDER BY ALL"
    )
    return [tuple(r) for r in rel.fetchall()]


def _files(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*") if p.is_file()}


def test_duckdb_reads_results_with_their_partition_values(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    _export(db, out, "--csv", tmp_path / "long.csv")  # both in one run
    assert len((tmp_path / "long.csv").read_text().splitlines()) == 1 + 4
    store = Store(db)
    try:
        names = {c.campaign_id: c.name for c in store.campaigns()}
        expected = sorted(
            (r.result_id, names[r.campaign_id], r.agent_id,
             datetime.fromtimestamp(r.received_at, timezone.utc).date(), r.campaign_id)
            for r in store.result_rows()
        )  # fmt: skip
    finally:
        store.close()
    got = _read(out / "**/*.parquet", "result_id, campaign, device, date, campaign_id")
    assert got == expected and len(got) == 4
    assert {row[1] for row in got} == {"alpha", ODD_NAME}
    folders = {p.name for p in (out / "results").iterdir()}
    assert folders == {"campaign=alpha", "campaign=lab%2Fbeta%3D2"}  # no folder made by `/`


def test_latencies_join_results_one_row_per_raw_latency(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    _export(db, out, "--latencies")
    joined = duckdb.sql(
        f"SELECT r.result_id, l.index, l.latency_ms "
        f"FROM read_parquet('{out}/results/**/*.parquet', hive_partitioning = true) r "
        f"JOIN read_parquet('{out}/latencies/**/*.parquet', hive_partitioning = true) l "
        "USING (result_id, campaign, device, date) ORDER BY r.result_id, l.index"
    ).fetchnumpy()
    store = Store(db)
    try:
        rows = store.result_rows()
        ids = [r.result_id for r in rows if r.status is ResultStatus.OK]
        assert len(ids) == len(rows) - 1  # the failed job's result has no latencies
        for rid in ids:
            mine = joined["result_id"] == rid
            stored = store.latencies(rid)
            assert mine.sum() == stored.size > 0
            assert np.array_equal(joined["index"][mine], np.arange(stored.size))
            assert np.array_equal(joined["latency_ms"][mine], stored / 1e6)
    finally:
        store.close()
    assert set(joined["result_id"]) == set(ids)


def test_reexport_overwrites_and_other_campaigns_stay(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    _export(db, out, "--campaign", "alpha", "--latencies")
    alpha = _files(out)
    _export(db, out, "--campaign", ODD_NAME, "--latencies")
    both = _files(out)
    assert alpha < both and len(both) == 2 * len(alpha)
    _export(db, out, "--campaign", "alpha", "--latencies")  # the other campaign left alone
    assert _files(out) == both
    _export(db, out, "--latencies")  # everything again: the same files, no duplicate rows
    assert _files(out) == both
    assert _read(out / "results/**/*.parquet", "count(*)") == [(4,)]


def test_partition_order_is_folder_order(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    _export(db, out, "--partition", "date,campaign")
    for path in _files(out):
        assert path.parts[0] == "results"
        assert path.parts[1].startswith("date=") and path.parts[2].startswith("campaign=")
    assert _read(out / "**/*.parquet", "count(DISTINCT campaign), count(*)") == [(2, 4)]


def test_unknown_partition_key_names_the_allowed_ones(db: Path, tmp_path: Path) -> None:
    proc = collector_cli("export", "--db", db, "--parquet-dataset", tmp_path / "ds",
                         "--partition", "campaign,lab")  # fmt: skip
    assert proc.returncode != 0 and not (tmp_path / "ds").exists()
    assert "unknown key lab" in proc.stderr and "campaign, device, date" in proc.stderr


def test_latencies_alone_asks_for_a_dataset(db: Path, tmp_path: Path) -> None:
    proc = collector_cli("export", "--db", db, "--csv", tmp_path / "x.csv", "--latencies")
    assert proc.returncode != 0 and "--latencies needs --parquet-dataset" in proc.stderr
    assert not (tmp_path / "x.csv").exists()
