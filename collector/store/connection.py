"""The store's one SQLite connection: WAL, synchronous=FULL, one transaction per state change.

A result is acknowledged to the agent only after its transaction commits with
synchronous=FULL, so an acknowledged result survives a crash of the collector or the machine.
``batch`` groups many changes into one commit (one fsync); each change inside is a savepoint,
so one failed change rolls back alone while the rest still commit with the batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from collector.store import schema
from shared.errors import StoreError


class Database:
    """Opens (creating or upgrading) the database; the base every table's reads and writes use."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self._in_batch = False
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(schema.SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot open result database {self.path}: {exc}",
                hint="pass another --db, or move the damaged file away",
            ) from exc

    def _check_version(self) -> None:
        schema.check_version(self.db, self.path, self.transaction)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error; inside a batch, a savepoint
        (rolled back alone on error) whose changes commit with the batch."""
        if self._in_batch:
            self.db.execute("SAVEPOINT change")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK TO change")
                self.db.execute("RELEASE change")
                raise
            self.db.execute("RELEASE change")
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: every change inside commits (one fsync) when the block ends.

        The caller must not acknowledge anything done inside before the block has exited.
        """
        self.db.execute("BEGIN IMMEDIATE")
        self._in_batch = True
        try:
            yield
        except BaseException:
            self._in_batch = False
            self.db.execute("ROLLBACK")
            raise
        self._in_batch = False
        self.db.execute("COMMIT")

    @contextmanager
    def message(self) -> Iterator[None]:
        """One peer message inside a batch: a savepoint that an error rolls back whole (every
        change the message made), leaving the batch's other messages to commit. Outside a
        batch, each change is its own transaction already."""
        if not self._in_batch:
            yield
            return
        self.db.execute("SAVEPOINT message")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK TO message")
            self.db.execute("RELEASE message")
            raise
        self.db.execute("RELEASE message")

    def integrity_ok(self) -> bool:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
