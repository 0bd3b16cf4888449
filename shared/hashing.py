"""The one content hash both sides name a model by: a job names its model by the sha256 of the
file's bytes, the agent checks its cache against it, and a result carries it back.

Streamed in 1 MiB blocks so a large model is never held in memory twice. Standard library only,
so the collector and the agent's light side can both import it.
"""

from __future__ import annotations

import hashlib
import os

_BLOCK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Lowercase hex sha256 of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
