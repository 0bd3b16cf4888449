"""The README documents the JSON report as the code writes it: every top-level key, every
table and every column of a real report appears in its "JSON report" section, so a new
column cannot ship undocumented (issue 17: tables.latency, tables.model_ops, culprits)."""

from __future__ import annotations

import re
from pathlib import Path

from collector.report import build_report_from_frames
from tests.test_report_render import fleet_frames

README = Path(__file__).resolve().parent.parent / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("### The JSON report")
    end = text.find("\n## ", start)
    return text[start : end if end > 0 else None]


def _names(text: str) -> set[str]:
    """Every identifier inside a `code span` of `text` (spans may list several)."""
    return {w for span in re.findall(r"`([^`]*)`", text) for w in re.findall(r"[\w.]+", span)}


def _bullet(section: str, table: str) -> str:
    start = section.index(f"**`tables.{table}`**")
    end = section.find("\n- **", start + 1)
    return section[start : end if end > 0 else None]


def test_every_key_table_and_column_of_the_json_report_is_documented() -> None:
    doc = build_report_from_frames(*fleet_frames(), campaign="fleet").to_json()
    section = _section()
    assert not set(doc) - _names(section), "document the new top-level keys in README.md"
    for table, rows in doc["tables"].items():
        columns = {c for row in rows for c in row}
        undocumented = columns - _names(_bullet(section, table))
        assert not undocumented, f"README.md: tables.{table} lacks {sorted(undocumented)}"


def test_the_tables_the_issue_adds_are_documented_with_their_columns() -> None:
    section = _section()
    latency = _names(_bullet(section, "latency"))
    assert {"device", "model", "p50_ms", "p90_ms", "n", "valid", "invalid_reasons"} <= latency
    ops = _names(_bullet(section, "model_ops"))
    assert {"op_type", "nodes", "time_share", "flop_share", "excess_share", "time_us", "flops",
            "bytes", "gflops", "bound"} <= ops  # fmt: skip
    models = _names(_bullet(section, "models"))
    assert {"bound", "bound_note", "roof_level", "slowdown", "culprits"} <= models
    assert {"fastest", "culprits"} <= _names(section)
