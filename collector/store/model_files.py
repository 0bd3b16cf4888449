"""The collector's content-addressed model files: `<folder>/<sha256>.onnx`, written once.

Campaign clients upload models here; agents fetch them by hash. The hash is the name, so a
model uploaded twice is stored once and a file's name says what its bytes must hash to.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


class ModelStore:
    """Model files keyed by sha256."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.folder / f"{sha256}.onnx"

    def __contains__(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, data: bytes) -> tuple[str, Path]:
        """Store bytes (atomically, fsynced) and return (sha256, path)."""
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.path(sha256)
        if not path.is_file():
            tmp = path.with_suffix(f".part{os.getpid()}")
            with tmp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(path)
        return sha256, path

    def read(self, sha256: str) -> bytes | None:
        """The bytes of a stored model, or None when absent or no longer matching its hash."""
        try:
            data = self.path(sha256).read_bytes()
        except OSError:
            return None
        return data if hashlib.sha256(data).hexdigest() == sha256 else None
