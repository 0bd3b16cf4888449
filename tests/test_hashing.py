"""shared.hashing: the one content hash that names a model on both sides."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from shared.hashing import file_sha256


def test_streamed_hash_equals_one_shot_hash_across_block_boundaries(tmp_path: Path) -> None:
    for size in (0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 7):
        data = os.urandom(size)
        path = tmp_path / f"m{size}.onnx"
        path.write_bytes(data)
        assert file_sha256(path) == hashlib.sha256(data).hexdigest()
        assert file_sha256(str(path)) == file_sha256(path)


def test_collector_and_agent_use_the_same_function() -> None:
    from agent.engine import measure
    from agent.link import model_cache
    from collector.flops import model_sha256

    assert measure.file_sha256 is model_cache.file_sha256 is model_sha256 is file_sha256
