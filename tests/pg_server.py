"""A real PostgreSQL server for tests and benches: initdb into a temporary folder, postgres on a
free 127.0.0.1 port, run as an unprivileged user (postgres refuses to run as root), stopped after.

Why its own server and not a running one: a test must not depend on, or write into, whatever
PostgreSQL a machine happens to have. Each test gets its own database (CREATE DATABASE), so
tests share one server start per session and never see each other's rows.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

ADMIN = "flopgap"
PASSWORD = "flopgap-test"  # scram over TCP, so a wrong password is refused as in production
START_TIMEOUT_S = 60.0
_POLL = threading.Event()  # never set: wait(t) is a bounded polling period


def find_binary(name: str) -> Path | None:
    """`name` (initdb, postgres) on PATH, else the newest Debian /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found is not None:
        return Path(found)
    candidates = [Path(p) for p in glob.glob(f"/usr/lib/postgresql/*/bin/{name}")]
    candidates.sort(key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return candidates[-1] if candidates else None


def missing_reason() -> str | None:
    """Why no server can be started here (no binary, no psycopg), or None when one can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]>=3.1')"
    for name in ("initdb", "postgres"):
        if find_binary(name) is None:
            return f"no PostgreSQL {name} on PATH or in /usr/lib/postgresql/*/bin"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> str | None:
    """The user postgres runs as: ourselves, unless we are root (then postgres, or nobody)."""
    if os.geteuid() != 0:
        return None
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return user
    raise RuntimeError("running as root with neither a postgres nor a nobody user")


class PgServer:
    """One postgres process on a free port; `url(db)` names a database on it."""

    def __init__(self, durable: bool = False) -> None:
        """`durable`: fsync on, as a production server (benches); tests run without it."""
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="flopgap-pg-"))
        self.user = _run_as()
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.root / "postgres.log"

    def _popen(self, argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, user=self.user, cwd=self.root, **kwargs)  # type: ignore[call-overload]

    def start(self) -> PgServer:
        initdb, postgres = find_binary("initdb"), find_binary("postgres")
        if initdb is None or postgres is None:
            raise RuntimeError(missing_reason())
        if self.user is not None:
            shutil.chown(self.root, self.user)
        (self.root / "pw").write_text(PASSWORD + "\n")
        if self.user is not None:
            shutil.chown(self.root / "pw", self.user)
        data, sockets = self.root / "data", self.root / "sock"
        init = self._popen([str(initdb), "-D", str(data), "-U", ADMIN, "--pwfile",
                            str(self.root / "pw"), "--auth-local=trust",
                            "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        out, _ = init.communicate(timeout=120)
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {out.decode(errors='replace')[-2000:]}")
        sockets.mkdir()
        if self.user is not None:
            shutil.chown(sockets, self.user)
        options = [] if self.durable else ["-c", "fsync=off", "-c", "synchronous_commit=off",
                                           "-c", "full_page_writes=off"]  # fmt: skip
        with self.log.open("wb") as log:
            self.proc = self._popen([str(postgres), "-D", str(data), "-k", str(sockets),
                                     "-h", "127.0.0.1", "-p", str(self.port),
                                     "-c", "max_connections=100", *options],
                                    stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import psycopg  # the postgres extra's: a checkout without it only skips these tests

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log.read_text()[-2000:]}")
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres not ready after {START_TIMEOUT_S} s") from None
            _POLL.wait(0.1)

    def url(self, database: str, user: str = ADMIN, password: str = PASSWORD) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def admin(self, database: str = "postgres") -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(self.url(database), autocommit=True)

    def new_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # a fast shutdown: no waiting for clients
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)
