"""Small, failure-tolerant file reads under an injectable root."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_ROOT = Path(os.environ.get("FLOPGAP_SYSFS_ROOT", "/"))


def under(root: Path | str, path: str) -> Path:
    """`path` (absolute, as on the board) re-rooted under `root`."""
    return Path(root) / path.lstrip("/")


def read_text(path: Path) -> str | None:
    """The file's stripped text, or None when it is absent, unreadable or not text."""
    try:
        return path.read_text(encoding="utf-8", errors="strict").strip("\x00\n ")
    except (OSError, UnicodeDecodeError):
        return None


def read_int(path: Path) -> int | None:
    """The file's integer value, or None when absent, unreadable, empty or non-numeric."""
    text = read_text(path)
    if not text:
        return None
    try:
        return int(text.split()[0])
    except ValueError:
        return None
