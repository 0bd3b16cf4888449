"""A database URL is never taken for a path: taken for one, ``postgresql://u@h/db`` used to make a
folder ``postgresql:`` in the working directory with a SQLite file inside, which two collectors
then shared. A postgresql URL opens PostgreSQL (tests/test_store_pg.py); any other scheme is
refused before anything is created, by every command that opens a store."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.store import Store
from shared.errors import StoreError
from tests.conftest import REPO, Runner


@pytest.mark.parametrize("url", ["sqlite:///x.db", "mysql://u@127.0.0.1:3306/r",
                                 "file:///tmp/results.sqlite"])  # fmt: skip
def test_a_url_is_refused_and_nothing_is_created(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for given in (url, Path(url)):  # argparse hands commands a Path, which folds "//"
        with pytest.raises(StoreError, match="URL") as err:
            Store(given)
        assert "file path" in (err.value.hint or "")
    assert list(tmp_path.iterdir()) == []


def test_a_windows_drive_and_a_colon_in_a_name_stay_paths(tmp_path: Path) -> None:
    Store(tmp_path / "C:" / "results.sqlite").close()
    Store(tmp_path / "run:2.sqlite").close()


def test_serve_refuses_a_url_in_one_line_before_binding(
    tmp_path: Path, collector_cli: Runner
) -> None:
    proc = collector_cli("serve", "--db", "sqlite:///r.db", "--bind",
                         "tcp://127.0.0.1:0", timeout=60)  # fmt: skip
    assert proc.returncode != 0
    assert "URL" in proc.stderr and "listening" not in proc.stdout + proc.stderr
    assert not (REPO / "sqlite:").exists()
