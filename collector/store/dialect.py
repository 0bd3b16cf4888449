"""SQLite's SQL, as the table modules write it, rewritten for PostgreSQL once per statement.

Why a rewrite and not two copies of each query: every table module (and any added later, such
as leases) keeps one SQL text with ``?`` placeholders; what PostgreSQL spells differently is
translated here, so no table module ever asks which backend it runs on. What is rewritten:

- ``?`` placeholders to ``%s`` (and a literal ``%`` to ``%%``)
- ``INSERT OR IGNORE`` to ``INSERT ... ON CONFLICT DO NOTHING``
- ``INSERT OR REPLACE INTO t`` to an upsert on t's primary key, every other column replaced
- two-argument ``MAX(a, b)`` (SQLite's scalar max) to ``GREATEST(a, b)``
- ``rowid`` to ``ctid`` (a row's physical place: insertion order for rows never updated)
- ``BEGIN IMMEDIATE`` to ``BEGIN``; in DDL, BLOB to BYTEA, REAL to DOUBLE PRECISION and
  INTEGER to BIGINT (a SQLite integer is 64-bit; FLOP counts and ns latencies need it)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

_INSERT_OR = re.compile(r"^\s*INSERT\s+OR\s+(IGNORE|REPLACE)\s+INTO\s+(\w+)", re.IGNORECASE)
_SCALAR_MAX = re.compile(r"\bMAX\(([^(),]+),([^(),]+)\)", re.IGNORECASE)
_ROWID = re.compile(r"\browid\b", re.IGNORECASE)
_DDL_TYPES = [
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
]


class UnknownTable(LookupError):
    """An upsert into a table the catalogue read did not show with a primary key."""


class Tables:
    """Each table's columns in order and its primary key, read from the catalogue once: what
    an ``INSERT OR REPLACE`` upsert must name."""

    def __init__(self, columns: Mapping[str, Sequence[str]], keys: Mapping[str, Sequence[str]]):
        self.columns = {name: tuple(cols) for name, cols in columns.items()}
        self.keys = {name: tuple(cols) for name, cols in keys.items()}


def ddl(script: str) -> str:
    """A SQLite DDL script with PostgreSQL's column types."""
    for pattern, replacement in _DDL_TYPES:
        script = pattern.sub(replacement, script)
    return script


@lru_cache(maxsize=1024)
def _statement(sql: str, replace_target: tuple[tuple[str, ...], tuple[str, ...]] | None) -> str:
    text = sql.strip()
    if re.fullmatch(r"BEGIN\s+(IMMEDIATE|EXCLUSIVE|DEFERRED)", text, re.IGNORECASE):
        return "BEGIN"
    text = text.replace("%", "%%").replace("?", "%s")
    text = _SCALAR_MAX.sub(r"GREATEST(\1,\2)", text)
    text = _ROWID.sub("ctid", text)
    found = _INSERT_OR.match(text)
    if found is None:
        return text
    text = _INSERT_OR.sub(f"INSERT INTO {found.group(2)}", text, count=1)
    if found.group(1).upper() == "IGNORE" or replace_target is None:
        return f"{text} ON CONFLICT DO NOTHING"
    columns, keys = replace_target
    rest = [c for c in columns if c not in keys]
    if not rest:
        return f"{text} ON CONFLICT DO NOTHING"
    updates = ", ".join(f"{c}=EXCLUDED.{c}" for c in rest)
    return f"{text} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"


def statement(sql: str, tables: Tables) -> str:
    """One statement of the table modules' SQL as PostgreSQL takes it (cached)."""
    found = _INSERT_OR.match(sql)
    target = None
    if found is not None and found.group(1).upper() == "REPLACE":
        table = found.group(2).lower()
        if table not in tables.keys:
            raise UnknownTable(f"INSERT OR REPLACE into {table}, which has no primary key")
        target = (tables.columns[table], tables.keys[table])
    return _statement(sql, target)
