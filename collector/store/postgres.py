"""A psycopg 3 connection that speaks the subset of sqlite3's connection the table modules use.

Why a wrapper: every table module calls ``execute``/``executemany`` with SQLite's SQL and reads
rows by column name or position; ``PgConnection`` rewrites each statement once
(collector.store.dialect), runs it in autocommit mode so ``BEGIN``/``COMMIT``/``SAVEPOINT``
issued by collector.store.connection are PostgreSQL's own transactions and savepoints, and
hands back rows that index like ``sqlite3.Row``. psycopg is imported here only, so a SQLite
collector never needs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

import psycopg
from psycopg import pq

from collector.store import dialect

_IDLE = pq.TransactionStatus.IDLE

_TABLES_SQL = """
SELECT c.relname, a.attname, a.attnum,
       COALESCE(a.attnum = ANY (i.indkey), false) AS in_key
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE c.relkind = 'r'
ORDER BY c.relname, a.attnum
"""


class Row(tuple[Any, ...]):
    """A result row indexed by position or by column name, like sqlite3.Row."""

    names: tuple[str, ...] = ()

    def keys(self) -> list[str]:
        return list(self.names)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names.index(key))
        return tuple.__getitem__(self, key)


_ROW_CLASSES: dict[tuple[str, ...], type[Row]] = {}


def _row_class(names: tuple[str, ...]) -> type[Row]:
    cls = _ROW_CLASSES.get(names)
    if cls is None:
        cls = _ROW_CLASSES[names] = cast(type[Row], type("Row", (Row,), {"names": names}))
    return cls


class Cursor:
    """The rows of one statement, read as sqlite3's cursor reads them."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount
        description = cursor.description
        self._cls = None if description is None else _row_class(tuple(d.name for d in description))

    def fetchone(self) -> Row | None:
        if self._cls is None:
            return None
        values = self._cursor.fetchone()
        return None if values is None else self._cls(values)

    def fetchall(self) -> list[Row]:
        return list(self)

    def __iter__(self) -> Iterator[Row]:
        if self._cls is None:
            return
        for values in self._cursor.fetchall():
            yield self._cls(values)


class PgConnection:
    """One autocommit psycopg connection behind sqlite3's execute / executemany / executescript."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.tables = dialect.Tables({}, {})

    def refresh_tables(self) -> None:
        """Read every table's columns and primary key (after the DDL ran): what upserts name."""
        columns: dict[str, list[str]] = {}
        keys: dict[str, list[str]] = {}
        for table, column, _, in_key in self.conn.execute(_TABLES_SQL).fetchall():
            columns.setdefault(table, []).append(column)
            if in_key:
                keys.setdefault(table, []).append(column)
        self.tables = dialect.Tables(columns, keys)

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != _IDLE

    def _translate(self, sql: str) -> str:
        try:
            return dialect.statement(sql, self.tables)
        except dialect.UnknownTable:  # a table made since the catalogue was read
            self.refresh_tables()
            return dialect.statement(sql, self.tables)

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        # parameters always passed (even none): psycopg then reads %s and unescapes %%
        return Cursor(self.conn.execute(self._translate(sql), tuple(parameters)))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        cursor = self.conn.cursor()
        cursor.executemany(self._translate(sql), [tuple(r) for r in rows])
        return Cursor(cursor)

    def executescript(self, script: str) -> None:
        """A DDL script, in PostgreSQL's types (no parameters, so one round trip)."""
        self.conn.execute(dialect.ddl(script))

    def close(self) -> None:
        self.conn.close()
