"""The store's one connection (SQLite or PostgreSQL: collector.store.backend), one transaction
per state change.

A result is acknowledged to the agent only after its transaction commits with
synchronous=FULL, so an acknowledged result survives a crash of the collector or the machine.
``batch`` groups many changes into one commit (one fsync); each change inside is a savepoint,
so one failed change rolls back alone while the rest still commit with the batch.

On PostgreSQL the same BEGIN / SAVEPOINT / COMMIT statements are the server's own, so a batch
and its savepoints mean the same there; a commit is durable once the server says so.

A full disk (SQLITE_FULL, ENOSPC, EDQUOT, PostgreSQL's disk_full) is not a damaged store: it
surfaces as `StoreFull`, which names the folder that is full and what is free there, so the
collector can refuse writes, say so, and resume when space returns (collector.server.disk)
instead of crashing.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from collector.store import location
from collector.store.backend import Backend, Connection, SqliteBackend
from collector.store.db_errors import DATABASE_ERRORS
from shared.errors import StoreError

SQLITE_FULL = 13  # sqlite3.h: "Insertion failed because database is full"
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
PG_DISK_FULL = "53100"  # PostgreSQL's SQLSTATE disk_full


class StoreFull(StoreError):
    """The disk under the store has no room for a write: nothing of it was kept."""

    def __init__(self, folder: Path, free_bytes: int | None, cause: str) -> None:
        free = "unknown" if free_bytes is None else f"{free_bytes / 2**20:.1f} MiB"
        super().__init__(
            f"the disk under {folder} is full ({free} free): {cause}",
            hint=f"free space on the filesystem holding {folder}; nothing is lost, "
            "agents keep their results spooled until they are stored",
        )
        self.folder = folder
        self.free_bytes = free_bytes
        self.cause = cause


def free_bytes(folder: Path) -> int | None:
    """Bytes free to an unprivileged writer in `folder`'s filesystem, None if unreadable."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def is_full(exc: BaseException) -> bool:
    """Whether `exc` says the disk is full (SQLite's SQLITE_FULL or the OS's ENOSPC/EDQUOT)."""
    if isinstance(exc, StoreFull):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
        if code is not None:
            return bool(code & 0xFF == SQLITE_FULL)
        return "database or disk is full" in str(exc)
    if getattr(exc, "sqlstate", None) == PG_DISK_FULL:
        return True
    return isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS


def refuse_url(path: Path | str) -> None:
    """Refuse a URL of a scheme no backend reads (``sqlite:///x.db``, ``mysql://``) before
    anything is created: taken for a path, such a string made a folder ``sqlite:`` with a
    SQLite file in it, which two collectors given that "URL" then shared."""
    location.target(path)


class Database:
    """Opens (creating or upgrading) the database; the base every table's reads and writes use."""

    def __init__(self, path: Path | str) -> None:
        self.backend = open_backend(path)
        self.path = self.backend.path  # a local file: its folder holds what lives beside it
        self._in_batch = False
        try:
            self.db: Connection = self.backend.connect()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot open result database {self.path}: {exc}",
                hint="pass another --db, or move the damaged file away",
            ) from exc
        try:
            self.backend.prepare(self.db, self.transaction)
        except DATABASE_ERRORS as exc:
            self.db.close()
            raise StoreError(
                f"cannot open result database {self.backend.name}: {exc}",
                hint="pass another --db, or move the damaged file away",
            ) from exc
        except BaseException:
            self.db.close()
            raise

    @property
    def claim_lock(self) -> str:
        """The clause that locks the job a dispatch picks (PostgreSQL: SKIP LOCKED)."""
        return self.backend.claim_lock

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error; inside a batch, a savepoint
        (rolled back alone on error) whose changes commit with the batch."""
        if self._in_batch:
            self.db.execute("SAVEPOINT change")
            try:
                yield self.db
            except BaseException as exc:
                if self.db.in_transaction:  # SQLite may have rolled a full write back itself
                    self.db.execute("ROLLBACK TO change")
                    self.db.execute("RELEASE change")
                if is_full(exc):
                    raise self.full_error(exc) from exc
                raise
            self.db.execute("RELEASE change")
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException as exc:
            self._rollback()
            if is_full(exc):
                raise self.full_error(exc) from exc
            raise

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: every change inside commits (one fsync) when the block ends.

        The caller must not acknowledge anything done inside before the block has exited.
        """
        self.db.execute("BEGIN IMMEDIATE")
        self._in_batch = True
        try:
            yield
            self._in_batch = False
            if not self.db.in_transaction:  # a full write inside made SQLite roll it all back
                raise StoreFull(self.path.parent, free_bytes(self.path.parent),
                                "SQLite rolled the batch back")  # fmt: skip
            self.db.execute("COMMIT")  # where a full disk usually shows: the WAL grows here
        except BaseException as exc:
            self._in_batch = False
            self._rollback()
            if is_full(exc):
                raise self.full_error(exc) from exc
            raise

    def _rollback(self) -> None:
        """Roll back the open transaction, if SQLite has not already (it may on SQLITE_FULL)."""
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def full_error(self, exc: BaseException) -> StoreFull:
        """`exc` (a full-disk error) as a StoreFull naming the folder and what is free."""
        if isinstance(exc, StoreFull):
            return exc
        folder = self.path.parent
        return StoreFull(folder, free_bytes(folder), f"{type(exc).__name__}: {exc}")

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
        """SQLite's integrity_check; on PostgreSQL, a consistency query over jobs and results
        (every done job has exactly one result, no result without its job or latencies)."""
        return self.backend.integrity_ok(self.db)


def open_backend(db: Path | str) -> Backend:
    """The backend `db` names: a ``postgresql://`` URL, else a SQLite file path."""
    where = location.target(db)
    if isinstance(where, Path):
        return SqliteBackend(where)
    from collector.store.postgres_backend import PostgresBackend  # psycopg only when asked

    return PostgresBackend(where)
