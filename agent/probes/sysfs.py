"""Small, failure-tolerant file reads under an injectable root."""

from __future__ import annotations

from pathlib import Path

from agent.probes.nodes import read_node


def under(root: Path | str, path: str) -> Path:
    """`path` (absolute, as on the board) re-rooted under `root`."""
    return Path(root) / path.lstrip("/")


def read_text(path: Path) -> str | None:
    """The file's stripped text, or None when it is absent, unreadable or not text."""
    try:
        return read_node(path).strip("\x00\n ")  # read_node: recorded by `capture`
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
