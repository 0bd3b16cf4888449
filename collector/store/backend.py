"""The two backends a store opens, chosen once from the --db text: one class each, one interface.

Why here and nowhere else: a table module runs the same SQL on either backend (PostgreSQL's
spelling is collector.store.dialect's job); what differs is how a connection is opened and
made ready, how a damaged store is recognised, and the clause that locks a job being claimed.

- ``SqliteBackend``   a file in WAL mode with synchronous=FULL (the default, embedded)
- ``PostgresBackend`` a ``postgresql://`` URL through psycopg 3, shared by many collectors
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from collector.store import schema


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the table modules call on a connection: sqlite3's, or collector.store.postgres'."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Any: ...

    def executescript(self, script: str, /) -> Any: ...

    def close(self) -> None: ...


Transaction = Callable[[], AbstractContextManager[Connection]]


class Backend(Protocol):
    path: Path  # a local file whose folder holds what lives beside the store
    name: str  # what messages call the store: its path, or its URL without a password
    claim_lock: str  # appended to the SELECT that picks a job to dispatch

    def connect(self) -> Connection: ...

    def prepare(self, db: Connection, transaction: Transaction) -> None: ...

    def integrity_ok(self, db: Connection) -> bool: ...


class SqliteBackend:
    """A SQLite file: WAL, synchronous=FULL, foreign keys on; schema upgrades in place."""

    claim_lock = ""  # one writer at a time already: BEGIN IMMEDIATE locks the whole file

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    def connect(self) -> Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(self.path), isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def prepare(self, db: Connection, transaction: Transaction) -> None:
        db.executescript(schema.SCHEMA)
        schema.check_version(db, self.name, transaction)

    def integrity_ok(self, db: Connection) -> bool:
        return bool(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")
