"""The OS page cache before a cold start: left warm, or dropped where the system allows it.

Why say which: a model loaded "cold" from a warm page cache reads no disk, and an edge camera
that loads its model on demand may or may not find it cached. Dropping needs root and writes
``/proc/sys/vm/drop_caches`` (``1``: clean page-cache pages only; dentries and inodes stay);
without the right, the result says it stayed warm and why, rather than pretending. The path
is read under the injected root, so tests exercise this code on a tree of their own and never
drop the shared machine's cache.
"""

from __future__ import annotations

import os
from pathlib import Path

DROP_CACHES = "proc/sys/vm/drop_caches"


def drop(root: str = "/") -> str | None:
    """Drop the page cache under ``root``; None when dropped, otherwise why it was not."""
    path = Path(root) / DROP_CACHES
    uid = os.geteuid()
    if uid != 0:
        return f"dropping needs root (running as uid {uid}): {path} not written"
    if Path(root) == Path("/"):
        os.sync()  # dirty pages cannot be dropped: a freshly downloaded model would stay cached
    try:
        with open(path, "w", encoding="ascii") as out:
            out.write("1\n")
    except OSError as exc:
        return f"could not write {path}: {exc.strerror or exc}"
    return None
