"""The durable outbox: every result stays on disk until the collector acknowledges it.

A result is the list of ZeroMQ frames the agent would send. `put` writes them atomically
(temporary file, fsync, rename, fsync of the folder), so after a power cut a result is either
wholly there or absent. `pending` returns what is still unacknowledged, oldest first, for resending
after a reconnect; the collector stores by result id, so a resend is idempotent. `ack` deletes.

File format, version 1 (all integers little-endian)::

    b"FGSPOOL\\0"  magic, 8 bytes
    u16 version = 1, u16 id length, u32 frame count
    id bytes (ASCII)
    per frame: u64 length, then the frame's bytes
    u32 CRC32 of everything above

A file that fails any check (torn write, bit rot, a foreign version) is moved to
``folder/corrupt/`` with a logged reason, never raised: a bad file must not stop the outbox.
File names are ``<12-digit sequence>.<result id>.spool``; the sequence keeps send order.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import struct
import zlib
from pathlib import Path

from shared.errors import FlopgapError

log = logging.getLogger("flopgap.agent.spool")

FORMAT_VERSION = 1
_MAGIC = b"FGSPOOL\0"
_HEAD = struct.Struct("<HHI")
_LEN = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NAME = re.compile(r"(\d{12})\.([A-Za-z0-9_-]{1,64})\.spool")
_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class SpoolError(FlopgapError):
    """The outbox cannot take or give back a result."""


class SpoolFullError(SpoolError):
    """The disk, the quota or the configured max_bytes cannot hold another result."""


def encode(result_id: str, frames: list[bytes]) -> bytes:
    """One result as a version-1 spool file's bytes."""
    rid = result_id.encode("ascii")
    parts = [_MAGIC, _HEAD.pack(FORMAT_VERSION, len(rid), len(frames)), rid]
    for frame in frames:
        parts += [_LEN.pack(len(frame)), bytes(frame)]
    body = b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body))


def decode(blob: bytes) -> tuple[str, list[bytes]]:
    """(result id, frames) from a spool file's bytes; ValueError says what is wrong."""
    if len(blob) < len(_MAGIC) + _HEAD.size + _CRC.size or not blob.startswith(_MAGIC):
        raise ValueError("not a spool file (bad magic or too short)")
    body, (crc,) = blob[: -_CRC.size], _CRC.unpack(blob[-_CRC.size :])
    if zlib.crc32(body) != crc:
        raise ValueError("CRC32 mismatch (torn write or corrupted bytes)")
    version, id_len, count = _HEAD.unpack_from(body, len(_MAGIC))
    if version != FORMAT_VERSION:
        raise ValueError(f"spool format version {version}, this agent reads {FORMAT_VERSION}")
    pos = len(_MAGIC) + _HEAD.size
    result_id = body[pos : pos + id_len].decode("ascii", "replace")
    pos += id_len
    frames = []
    for _ in range(count):
        if pos + _LEN.size > len(body):
            raise ValueError("truncated frame header")
        (size,) = _LEN.unpack_from(body, pos)
        pos += _LEN.size
        if pos + size > len(body):
            raise ValueError("truncated frame")
        frames.append(body[pos : pos + size])
        pos += size
    if pos != len(body):
        raise ValueError(f"{len(body) - pos} trailing bytes after the last frame")
    return result_id, frames


def check_result_id(result_id: str) -> str:
    """Refuse an id that is not 1-64 of [A-Za-z0-9_-], so it is always a safe file name."""
    if not isinstance(result_id, str) or not _ID.fullmatch(result_id):
        raise SpoolError(
            f"bad result id {result_id!r}",
            hint="use 1-64 characters from A-Z, a-z, 0-9, '_' and '-' (uuid4().hex fits)",
        )
    return result_id


class Spool:
    """Unacknowledged results in `folder`, at most `max_bytes` of files (None: no cap)."""

    def __init__(self, folder: Path, max_bytes: int | None = None) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.corrupt: list[tuple[str, str]] = []  # (file name, reason) moved aside so far
        self.folder.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, tuple[int, Path, int]] = {}  # id -> (sequence, path, bytes)
        for stale in self.folder.glob(".*.tmp"):  # a put that died before its rename
            stale.unlink(missing_ok=True)
        for path in sorted(self.folder.glob("*.spool")):
            match = _NAME.fullmatch(path.name)
            if match is None:
                continue
            seq, rid = int(match.group(1)), match.group(2)
            if rid in self._files:
                self._quarantine(self._files[rid][1], "a newer file has the same result id")
            self._files[rid] = (seq, path, path.stat().st_size)
        self._next = max((seq for seq, _, _ in self._files.values()), default=0) + 1

    def __len__(self) -> int:
        return len(self._files)

    def total_bytes(self) -> int:
        """Bytes of the pending files on disk."""
        return sum(size for _, _, size in self._files.values())

    def put(self, result_id: str, frames: list[bytes]) -> None:
        """Store a result durably; SpoolFullError leaves nothing behind."""
        check_result_id(result_id)
        if result_id in self._files:
            raise SpoolError(f"result {result_id} is already spooled", hint="use a new result id")
        blob = encode(result_id, frames)
        if self.max_bytes is not None and self.total_bytes() + len(blob) > self.max_bytes:
            raise SpoolFullError(
                f"spool {self.folder} would exceed its cap of {self.max_bytes} bytes "
                f"({self.total_bytes()} pending + {len(blob)} new)",
                hint="reconnect to the collector so it acknowledges results, or raise the cap",
            )
        path = self.folder / f"{self._next:012d}.{result_id}.spool"
        tmp = self.folder / f".{result_id}.tmp"
        try:
            _write_durably(tmp, path, blob)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            path.unlink(missing_ok=True)  # renamed but the folder's fsync failed: not durable
            if exc.errno in _FULL_ERRNOS:
                raise SpoolFullError(
                    f"no space left for result {result_id} in {self.folder}: {exc.strerror}",
                    hint="free disk space or raise the quota; results stay pending meanwhile",
                ) from exc
            raise SpoolError(f"cannot write result {result_id} to {self.folder}: {exc}") from exc
        self._files[result_id] = (self._next, path, len(blob))
        self._next += 1

    def pending(self) -> list[tuple[str, list[bytes]]]:
        """Unacknowledged results, oldest first; unreadable files are moved to corrupt/."""
        out = []
        for rid in self.ids():
            frames = self.read(rid)
            if frames is not None:
                out.append((rid, frames))
        return out

    def ids(self) -> list[str]:
        """The unacknowledged result ids, oldest first, without reading a file."""
        return [rid for rid, _ in sorted(self._files.items(), key=lambda item: item[1][0])]

    def read(self, result_id: str) -> list[bytes] | None:
        """One pending result's frames; None if it is not pending or its file is unreadable
        (moved to corrupt/). Lets a paced resend read one file at a time."""
        entry = self._files.get(result_id)
        if entry is None:
            return None
        path = entry[1]
        try:
            stored_id, frames = decode(path.read_bytes())
            if stored_id != result_id:
                raise ValueError(f"file holds result id {stored_id!r}")
        except (OSError, ValueError) as exc:
            self._quarantine(path, str(exc))
            del self._files[result_id]
            return None
        return frames

    def ack(self, result_id: str) -> bool:
        """Forget a result the collector stored; False when it is not pending (or not an id)."""
        entry = self._files.pop(result_id, None) if isinstance(result_id, str) else None
        if entry is None:
            return False
        entry[1].unlink(missing_ok=True)
        _fsync_dir(self.folder)
        return True

    def _quarantine(self, path: Path, reason: str) -> None:
        corrupt = self.folder / "corrupt"
        corrupt.mkdir(exist_ok=True)
        try:
            path.replace(corrupt / path.name)
        except OSError as exc:
            reason += f"; could not move it aside ({exc}), deleted"
            path.unlink(missing_ok=True)
        self.corrupt.append((path.name, reason))
        log.warning("spool file %s is unreadable, moved to %s: %s", path.name, corrupt, reason)


def _write_durably(tmp: Path, path: Path, blob: bytes) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(blob)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in `folder` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
