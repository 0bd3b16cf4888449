"""The content-addressed model cache: verify on put and get, evict least recently used."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from agent.link.model_cache import ModelCache
from shared.errors import ProtocolError


def blob(tag: str, size: int = 1000) -> tuple[str, bytes]:
    data = (tag.encode() * size)[:size]
    return hashlib.sha256(data).hexdigest(), data


def test_put_then_get_returns_the_verified_file(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path)
    sha, data = blob("a")
    path = cache.put(sha, data)
    assert path == tmp_path / f"{sha}.onnx" and path.read_bytes() == data
    assert sha in cache and cache.get(sha) == path
    assert cache.total_bytes() == len(data)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_get_of_an_absent_model_is_none(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path)
    sha, _ = blob("missing")
    assert cache.get(sha) is None and sha not in cache


def test_a_corrupted_file_is_deleted_and_reported_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = ModelCache(tmp_path)
    sha, data = blob("b")
    path = cache.put(sha, data)
    with path.open("r+b") as handle:  # rot one byte in the middle
        handle.seek(len(data) // 2)
        handle.write(b"\xff")
    with caplog.at_level(logging.WARNING, logger="flopgap.agent.model_cache"):
        assert cache.get(sha) is None
    assert not path.exists() and sha not in cache
    assert "corrupted" in caplog.text
    assert cache.put(sha, data) == path and cache.get(sha) == path  # fetched again


def test_a_hash_mismatch_on_put_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path)
    sha, _ = blob("c")
    with pytest.raises(ProtocolError, match="hash to"):
        cache.put(sha, b"other bytes")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["", "A" * 64, "g" * 64, "a" * 63, "../" + "a" * 61])
def test_bad_hashes_are_refused(tmp_path: Path, bad: str) -> None:
    cache = ModelCache(tmp_path)
    with pytest.raises(ProtocolError, match="bad model sha256"):
        cache.get(bad)
    with pytest.raises(ProtocolError):
        cache.put(bad, b"x")
    assert bad not in cache


def test_least_recently_used_goes_first(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path, max_bytes=3000)
    (a, da), (b, db), (c, dc), (d, dd) = (blob(t) for t in "abcd")
    cache.put(a, da)
    cache.put(b, db)
    cache.put(c, dc)
    assert cache.get(a) is not None  # a is now more recent than b
    cache.put(d, dd)
    assert b not in cache and {a, c, d} <= {p.stem for p in tmp_path.glob("*.onnx")}
    assert cache.total_bytes() <= 3000


def test_the_file_just_written_is_never_evicted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = ModelCache(tmp_path, max_bytes=1500)
    small, data_small = blob("s")
    big, data_big = blob("B", 4000)
    cache.put(small, data_small)
    with caplog.at_level(logging.WARNING, logger="flopgap.agent.model_cache"):
        path = cache.put(big, data_big)
    assert cache.get(big) == path and small not in cache
    assert "exceeds the cache cap" in caplog.text
    assert cache.total_bytes() == 4000


def test_a_stale_partial_file_is_removed_at_start(tmp_path: Path) -> None:
    sha, _ = blob("p")
    (tmp_path / f".{sha}.123.part").write_bytes(b"half")
    cache = ModelCache(tmp_path)
    assert list(tmp_path.iterdir()) == [] and cache.total_bytes() == 0
