"""The durable outbox: round trip, order, restart, corruption, cap and id checks."""

from __future__ import annotations

import errno
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.link import spool as spool_mod
from agent.link.spool import Spool, SpoolError, SpoolFullError
from shared.errors import FlopgapError

FRAMES = [b'{"proto":2,"type":"result"}', b"", bytes(range(256)) * 40, b"\x00" * 7]


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def test_put_pending_ack_round_trip_is_byte_identical(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put("a1", FRAMES)
    assert len(spool) == 1
    assert spool.pending() == [("a1", FRAMES)]
    assert spool.ack("a1") is True
    assert spool.ack("a1") is False
    assert len(spool) == 0 and spool.pending() == [] and files(tmp_path) == []


def test_pending_is_oldest_first_and_survives_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    ids = ["zeta", "alpha", "m_1", "B-2"]
    for i, rid in enumerate(ids):
        spool.put(rid, [rid.encode(), bytes([i])])
    spool.ack("alpha")
    reopened = Spool(tmp_path)
    assert [rid for rid, _ in reopened.pending()] == ["zeta", "m_1", "B-2"]
    reopened.put("later", [b"x"])
    assert [rid for rid, _ in Spool(tmp_path).pending()][-1] == "later"
    assert reopened.pending()[1] == ("m_1", [b"m_1", b"\x02"])


def test_a_stale_temporary_file_is_removed_at_start(tmp_path: Path) -> None:
    (tmp_path / ".r1.tmp").write_bytes(b"half a result")
    assert len(Spool(tmp_path)) == 0
    assert files(tmp_path) == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # torn write
        lambda b: b[:-1],
        lambda b: b[:20] + bytes([b[20] ^ 0xFF]) + b[21:],  # a flipped bit inside
        lambda b: b"NOTSPOOL" + b[8:],
        lambda b: b"",
    ],
    ids=["truncated-half", "truncated-crc", "bit-flip", "bad-magic", "empty"],
)
def test_a_corrupt_file_is_moved_aside_with_a_reason(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    spool = Spool(tmp_path)
    spool.put("good1", [b"one"])
    spool.put("bad", FRAMES)
    spool.put("good2", [b"two"])
    (path,) = tmp_path.glob("*.bad.spool")
    path.write_bytes(damage(path.read_bytes()))
    reopened = Spool(tmp_path)
    assert reopened.pending() == [("good1", [b"one"]), ("good2", [b"two"])]
    assert [name for name, _ in reopened.corrupt] == [path.name]
    assert (tmp_path / "corrupt" / path.name).exists() and not path.exists()
    assert len(reopened) == 2 and reopened.ack("bad") is False


def test_a_file_renamed_to_another_id_is_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put("first", [b"1"])
    (path,) = tmp_path.glob("*.spool")
    path.rename(tmp_path / path.name.replace("first", "other"))
    reopened = Spool(tmp_path)
    assert reopened.pending() == []
    assert "result id" in reopened.corrupt[0][1]


def test_a_future_format_version_is_moved_aside(tmp_path: Path) -> None:
    blob = bytearray(spool_mod.encode("v9", [b"x"]))
    blob[8] = 9  # the u16 version after the magic
    body = bytes(blob[:-4])
    (tmp_path / "000000000001.v9.spool").write_bytes(body + zlib.crc32(body).to_bytes(4, "little"))
    spool = Spool(tmp_path)
    assert spool.pending() == []
    assert "version 9" in spool.corrupt[0][1]


def test_max_bytes_raises_spool_full_and_leaves_nothing_behind(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=300)
    spool.put("small", [b"x" * 100])
    before = files(tmp_path)
    with pytest.raises(SpoolFullError) as info:
        spool.put("big", [b"y" * 250])
    assert isinstance(info.value, FlopgapError) and info.value.hint
    assert files(tmp_path) == before and len(spool) == 1
    spool.ack("small")
    spool.put("big", [b"y" * 250])  # room again once the collector acknowledged
    assert [rid for rid, _ in spool.pending()] == ["big"]


def test_disk_full_raises_spool_full_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path)
    real_write = os.write

    def full_after_a_few_bytes(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data)[:5])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_mod.os, "write", full_after_a_few_bytes)
    with pytest.raises(SpoolFullError, match="no space left"):
        spool.put("r1", FRAMES)
    monkeypatch.undo()
    assert files(tmp_path) == [] and len(spool) == 0


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "a.b", "x" * 65, "é", "a b", ".hidden"])
def test_bad_result_ids_are_refused(tmp_path: Path, bad: str) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(SpoolError, match="bad result id"):
        spool.put(bad, [b"x"])
    assert spool.ack(bad) is False
    assert files(tmp_path) == []


def test_a_duplicate_result_id_is_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put("r" * 64, [b"1"])
    with pytest.raises(SpoolError, match="already spooled"):
        spool.put("r" * 64, [b"2"])
    assert spool.pending() == [("r" * 64, [b"1"])]
