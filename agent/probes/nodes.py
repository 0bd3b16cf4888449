"""Failure-aware reads of sysfs nodes for the power sources.

Every read returns a value or the reason there is none (missing, permission denied, empty,
not a number, a directory where a file should be), so a failed read becomes a gap with its
reason, never 0. All reads go through `read_node`, so `agent.probes.capture` can record exactly
what the probes read, and tests can replace it to simulate errors that file modes cannot
produce when the tests run as root (root with CAP_DAC_OVERRIDE reads a mode-000 file).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

PERMISSION_DENIED = "permission denied"

_RECORD: ContextVar[dict[Path, str] | None] = ContextVar("flopgap_probe_record", default=None)


def read_node(path: Path) -> str:
    """Raw text of one node; raises OSError or UnicodeDecodeError. Recorded during capture."""
    text = path.read_text(encoding="utf-8")
    record = _RECORD.get()
    if record is not None:
        record[path] = text
    return text


@contextmanager
def recording() -> Iterator[dict[Path, str]]:
    """Within the block, every node read in this thread is recorded as path -> text."""
    seen: dict[Path, str] = {}
    token = _RECORD.set(seen)
    try:
        yield seen
    finally:
        _RECORD.reset(token)


def read_str(path: Path) -> tuple[str | None, str | None]:
    """(stripped text, None), or (None, reason): missing, permission denied, empty, ..."""
    try:
        text = read_node(path)
    except FileNotFoundError:
        return None, f"{path}: missing"
    except PermissionError:
        return None, f"{path}: {PERMISSION_DENIED}"
    except IsADirectoryError:
        return None, f"{path}: is a directory, not a file"
    except OSError as exc:
        return None, f"{path}: {exc.strerror or exc}"
    except UnicodeDecodeError:
        return None, f"{path}: not text"
    text = text.strip("\x00\n ")
    if not text:
        return None, f"{path}: empty"
    return text, None


def read_number(path: Path) -> tuple[int | None, str | None]:
    """(integer, None), or (None, reason); a non-numeric file is a reason, never 0."""
    text, reason = read_str(path)
    if text is None:
        return None, reason
    try:
        return int(text.split()[0]), None
    except ValueError:
        return None, f"{path}: not a number ({text[:24]!r})"


def _natural(path: Path) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.name))


def list_dir(path: Path, pattern: str = "*") -> list[Path]:
    """Entries of `path` matching a glob pattern, in natural order (hwmon2 before hwmon10)."""
    try:
        return sorted(path.glob(pattern), key=_natural)
    except OSError:
        return []
