"""The CSV's columns only ever grow at the end: users' scripts and spreadsheets read by position.

tests/data/csv/columns.txt is the header as released. A new column is appended to it (and to
collector.export.COLUMNS) in the same change; reordering, renaming or inserting fails here.
"""

from __future__ import annotations

from pathlib import Path

from collector.costs import COST_COLUMNS
from collector.export import COLUMNS, DOCUMENT_COLUMNS, POWER_COLUMNS, STORE_COLUMNS

GOLDEN = Path(__file__).parent / "data" / "csv" / "columns.txt"


def test_released_columns_keep_their_positions() -> None:
    released = GOLDEN.read_text().split()
    assert list(COLUMNS[: len(released)]) == released, (
        "a released CSV column moved or was renamed: append new columns at the end only"
    )


def test_every_column_is_in_the_golden_header() -> None:
    released = GOLDEN.read_text().split()
    assert list(COLUMNS) == released, (
        "COLUMNS grew: append the new names to tests/data/csv/columns.txt in the same order"
    )


def test_column_names_are_unique() -> None:
    assert len(set(COLUMNS)) == len(COLUMNS)


def test_every_column_has_exactly_one_source() -> None:
    """A header name nothing fills would be an always-empty column; two sources would race."""
    sources = [STORE_COLUMNS, tuple(DOCUMENT_COLUMNS), COST_COLUMNS, POWER_COLUMNS]
    filled = [name for source in sources for name in source]
    assert sorted(filled) == sorted(COLUMNS)
