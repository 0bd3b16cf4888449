"""A PostgreSQL store: opened, checked and made ready before the collector binds any socket.

Every way it can fail to open is one line saying which and what to do next: the server cannot
be reached, the URL names a role, password or database the server refuses, the database holds
a newer store schema, or the role may not create the tables or read and write them.

Many collectors may open one database at once: the tables are created under a transaction-level
advisory lock, so two first starts cannot race on ``CREATE TABLE IF NOT EXISTS``.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import errors

from collector.store import consistency, location, schema
from collector.store.backend import Connection, Transaction
from collector.store.postgres import PgConnection
from shared.errors import StoreError

CONNECT_TIMEOUT_S = 5
_SCHEMA_LOCK = 0x666C6F70  # "flop": the advisory lock the schema is created under
TABLES = ("meta", "agents", "models", "campaigns", "jobs", "results", "latencies",
          "model_costs", "op_times", "predictors", "calibrations", "model_files")  # fmt: skip
# Only a shared database keeps the model bytes (collector.store.model_files): a new table, so
# the schema version stays 4, as for predictors.
MODEL_FILES = (
    "CREATE TABLE IF NOT EXISTS model_files (sha256 TEXT PRIMARY KEY, data BYTEA NOT NULL);"
)


class PostgresBackend:
    """A ``postgresql://`` URL; what SQLite keeps beside its file goes to a local cache folder."""

    claim_lock = " FOR UPDATE SKIP LOCKED"  # a job another collector is claiming is passed over

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = location.describe(url)
        self.path: Path = location.cache_home(url) / "store"

    def connect(self) -> Connection:
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.OperationalError as exc:
            raise _refused(self.name, exc) from None
        except psycopg.ProgrammingError as exc:  # a URL libpq cannot parse
            raise StoreError(
                f"--db {self.name} is not a PostgreSQL URL libpq can read: {_first_line(exc)}",
                hint="write it as postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
            ) from None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return PgConnection(conn)

    def prepare(self, db: Connection, transaction: Transaction) -> None:
        """Create the tables under the schema lock (or find them made), check the version,
        then check that this role may read and write every table."""
        try:
            with transaction() as tx:
                tx.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
                tx.executescript(schema.SCHEMA + MODEL_FILES)
                schema.check_version(tx, self.name, transaction)
        except errors.InsufficientPrivilege as exc:
            if _missing_tables(db):
                raise StoreError(
                    f"PostgreSQL role {_role(db)} may not create flopgap's tables in "
                    f"{self.name}: {_first_line(exc)}",
                    hint="GRANT CREATE ON SCHEMA public TO that role, or start flopgap serve "
                    "once as the database's owner to create them",
                ) from None
            _check_privileges(db, self.name)  # made by the owner already: may we use them?
            schema.require_current(db, self.name)
        else:
            _check_privileges(db, self.name)
        if isinstance(db, PgConnection):
            db.refresh_tables()

    def integrity_ok(self, db: Connection) -> bool:
        """What PRAGMA integrity_check stands for here: the store's own promises over jobs
        and results (collector.store.consistency)."""
        return not consistency.problems(db)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _refused(name: str, exc: psycopg.OperationalError) -> StoreError:
    """Why the server did not let us in, as one line with the next step."""
    text = str(exc)
    line = _first_line(exc)
    if "password authentication failed" in text or "no password supplied" in text:
        hint = "check the user and password in the URL (or in ~/.pgpass)"
    elif "does not exist" in text and "database" in text:
        hint = "create the database first (createdb NAME) or fix its name in the URL"
    elif "does not exist" in text and "role" in text:
        hint = "create the role (createuser NAME) or fix the user in the URL"
    else:
        return StoreError(
            f"cannot reach PostgreSQL at {name}: {line}",
            hint="check the host and port, and that the server is running and accepts "
            "TCP connections (listen_addresses, pg_hba.conf)",
        )
    return StoreError(f"PostgreSQL at {name} refused the connection: {line}", hint=hint)


def _role(db: Connection) -> str:
    return str(db.execute("SELECT current_user").fetchone()[0])


def _missing_tables(db: Connection) -> list[str]:
    return [t for t in TABLES if db.execute("SELECT to_regclass(?)", (t,)).fetchone()[0] is None]


_NEEDED = ("SELECT", "INSERT", "UPDATE", "DELETE")
# One call per privilege: has_table_privilege with a list is true when any one is held.
_ALL_PRIVILEGES = "SELECT " + " AND ".join(f"has_table_privilege(?, '{p}')" for p in _NEEDED)


def _check_privileges(db: Connection, name: str) -> None:
    """Refuse a role that cannot read and write every table now, not at the first result."""
    lacking = [
        table
        for table in TABLES
        if not db.execute(_ALL_PRIVILEGES, (table,) * len(_NEEDED)).fetchone()[0]
    ]
    if lacking:
        role = _role(db)
        raise StoreError(
            f"PostgreSQL role {role} may not read and write {', '.join(lacking)} in {name}",
            hint=f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        )
