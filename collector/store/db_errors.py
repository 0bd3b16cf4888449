"""The database exception classes of every backend, split into a peer's input and the store's
own trouble, so the collector's loop tells them apart without naming a driver.

A peer's message can break a constraint or carry a value the database cannot hold (SQLite's
IntegrityError, a binding error; PostgreSQL's IntegrityError, or a DataError such as a NUL
in text or an integer beyond BIGINT): that message is refused. Any other database error (a
lost connection, corruption, I/O) is the store's own trouble and stops the collector.
"""

from __future__ import annotations

import sqlite3

from shared.errors import StoreError

DATABASE_ERRORS: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)
INPUT_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
)

try:  # psycopg is the postgres extra's: a SQLite-only collector runs without it
    import psycopg
except ImportError:  # pragma: no cover - the extra is installed wherever tests run
    pass
else:
    DATABASE_ERRORS = (*DATABASE_ERRORS, psycopg.Error)
    INPUT_ERRORS = (*INPUT_ERRORS, psycopg.IntegrityError, psycopg.DataError)

# The store's own trouble, whichever backend: what a handler lets through to stop the loop.
STORE_TROUBLE: tuple[type[Exception], ...] = (StoreError, *DATABASE_ERRORS)
