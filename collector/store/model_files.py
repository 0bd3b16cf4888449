"""The collector's content-addressed model files: `<folder>/<sha256>.onnx`, written once.

Campaign clients upload models here; agents fetch them by hash. The hash is the name, so a
model uploaded twice is stored once and a file's name says what its bytes must hash to.

Beside a SQLite file the folder is the only copy. For a PostgreSQL URL the bytes are kept in
the database too (``model_files``, one BYTEA row per sha256), so a campaign uploaded to one
collector can be run by agents connected to another on a different host; the local folder
(under the URL's cache folder, collector.store.location) is then a cache that FLOP counting
and file sizes read, filled from the database on first use. The Store makes the table
(collector.store.postgres_backend), so it is opened first, as `flopgap serve` does.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from collector.store import location


class ModelStore:
    """Model files keyed by sha256."""

    def __init__(self, folder: Path) -> None:
        self.folder = location.local_folder(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._shared: Any = None  # the database connection holding the bytes, for a URL
        if location.is_postgres(folder):
            import psycopg

            url, _ = location.beside(folder)  # DB.models -> DB
            self._shared = psycopg.connect(url, autocommit=True)

    def path(self, sha256: str) -> Path:
        return self.folder / f"{sha256}.onnx"

    def __contains__(self, sha256: str) -> bool:
        return self.path(sha256).is_file() or self.read(sha256) is not None

    def put(self, data: bytes) -> tuple[str, Path]:
        """Store bytes (atomically, fsynced; in the database too for a URL): (sha256, path)."""
        sha256 = hashlib.sha256(data).hexdigest()
        if self._shared is not None:
            self._shared.execute(
                "INSERT INTO model_files (sha256, data) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (sha256, data),
            )
        return sha256, self._write(sha256, data)

    def _write(self, sha256: str, data: bytes) -> Path:
        path = self.path(sha256)
        if not path.is_file():
            tmp = path.with_suffix(f".part{os.getpid()}")
            with tmp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(path)
        return path

    def read(self, sha256: str) -> bytes | None:
        """The bytes of a stored model, or None when absent or no longer matching its hash."""
        data: bytes | None
        try:
            data = self.path(sha256).read_bytes()
        except OSError:
            data = self._fetch(sha256)
        return data if data is not None and hashlib.sha256(data).hexdigest() == sha256 else None

    def _fetch(self, sha256: str) -> bytes | None:
        """A model another collector uploaded: from the database into the local cache."""
        if self._shared is None:
            return None
        row = self._shared.execute(
            "SELECT data FROM model_files WHERE sha256=%s", (sha256,)
        ).fetchone()
        if row is None or hashlib.sha256(row[0]).hexdigest() != sha256:
            return None
        self._write(sha256, bytes(row[0]))
        return bytes(row[0])
