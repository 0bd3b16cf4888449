"""A content-addressed, size-bounded cache of model files on the agent's disk.

The collector names models by sha256 and sends the bytes once per agent; the cache keeps them
as ``<sha256>.onnx`` so a campaign that reruns a model costs no transfer. Every `get` hashes the
file again (streamed, 1 MiB at a time): a file that rotted on an SD card is deleted and reported
missing, and the caller fetches it again, so a job never measures bytes other than the ones
named. Recency is the file's mtime, set on every `put` and `get`; when the cache is over
`max_bytes` the least recently used files go first, never the one just written.

A hash mismatch on `put` raises `ProtocolError`: the bytes came off the wire and disagree with
the hash the collector announced for them, which is exactly what that error means to the runner
(the old runner raised it for the same check). Disk failures raise `CacheError`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from pathlib import Path

from shared.errors import FlopgapError, ProtocolError
from shared.hashing import file_sha256

log = logging.getLogger("flopgap.agent.model_cache")

DEFAULT_MAX_BYTES = 2 << 30  # 2 GiB
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BLOCK = 1 << 20


class CacheError(FlopgapError):
    """The model cache cannot store a model (disk full, permissions)."""


def check_sha256(sha256: str) -> str:
    """Refuse anything but 64 lowercase hex digits, so the name is always a safe file name."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ProtocolError(
            f"bad model sha256 {sha256!r}", hint="a model is named by 64 lowercase hex digits"
        )
    return sha256


class ModelCache:
    """Model files in `folder`, evicted least-recently-used beyond `max_bytes`."""

    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.folder.mkdir(parents=True, exist_ok=True)
        self._last_touch_ns = 0
        for stale in self.folder.glob(".*.part"):  # a put that died before its rename
            stale.unlink(missing_ok=True)

    def path_of(self, sha256: str) -> Path:
        return self.folder / f"{check_sha256(sha256)}.onnx"

    def __contains__(self, sha256: object) -> bool:
        """True when a file is cached under this hash (not re-hashed: `get` does that)."""
        return (
            isinstance(sha256, str)
            and bool(_SHA256.fullmatch(sha256))
            and (self.folder / f"{sha256}.onnx").is_file()
        )

    def total_bytes(self) -> int:
        """Bytes of all cached model files."""
        return sum(size for _, size, _ in self._entries())

    def get(self, sha256: str) -> Path | None:
        """The verified path of a cached model; None when absent or corrupted (then deleted)."""
        path = self.path_of(sha256)
        try:
            actual = file_sha256(path)
        except FileNotFoundError:
            return None
        if actual != sha256:
            log.warning(
                "cached model %s is corrupted (hashes to %s); deleted, fetch it again",
                sha256[:12],
                actual[:12],
            )
            path.unlink(missing_ok=True)
            return None
        self._touch(path)
        return path

    def put(self, sha256: str, data: bytes) -> Path:
        """Verify, store atomically, then evict LRU files down to max_bytes; returns the path."""
        path = self.path_of(sha256)
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise ProtocolError(
                f"model bytes hash to {actual[:12]}, the collector announced {sha256[:12]}",
                hint="the transfer was corrupted; the model will be requested again",
            )
        tmp = self.folder / f".{sha256}.{os.getpid()}.part"
        try:
            with tmp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise CacheError(
                f"cannot store model {sha256[:12]} in {self.folder}: {exc}",
                hint="free disk space or lower the cache size",
            ) from exc
        self._touch(path)
        self._evict(keep=path)
        return path

    def _touch(self, path: Path) -> None:
        """Mark `path` most recently used; strictly increasing even on a coarse clock."""
        now = max(time.time_ns(), self._last_touch_ns + 1)
        self._last_touch_ns = now
        os.utime(path, ns=(now, now))

    def _entries(self) -> list[tuple[int, int, Path]]:
        """(mtime ns, bytes, path) of every cached model, oldest use first."""
        out = []
        for path in self.folder.glob("*.onnx"):
            if _SHA256.fullmatch(path.stem):
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                out.append((st.st_mtime_ns, st.st_size, path))
        return sorted(out)

    def _evict(self, keep: Path) -> None:
        entries = self._entries()
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.max_bytes:
                return
            if path == keep:
                continue
            path.unlink(missing_ok=True)
            total -= size
            log.info("model cache over %d bytes: evicted %s", self.max_bytes, path.stem[:12])
        if total > self.max_bytes:
            log.warning(
                "model %s alone (%d bytes) exceeds the cache cap of %d bytes; kept anyway",
                keep.stem[:12],
                keep.stat().st_size,
                self.max_bytes,
            )
