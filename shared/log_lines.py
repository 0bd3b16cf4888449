"""One log line format for the collector and the agent: `TIME SIDE LEVEL message`, the level
written once.

Under systemd (stderr is the journal: JOURNAL_STREAM names it) journald stamps each line
itself, so the time is left out and the level also travels as a `<N>` syslog priority prefix,
which journald strips and keeps as the entry's PRIORITY (`journalctl -p warning` then works).
"""

from __future__ import annotations

import logging
import os
import sys

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}  # fmt: skip


def to_journal() -> bool:
    """True when stderr is the systemd journal (JOURNAL_STREAM is its `device:inode`)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        stat = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return stream == f"{stat.st_dev}:{stat.st_ino}"


class LineFormatter(logging.Formatter):
    """`2026-01-02 10:00:00,123 agent WARNING lost the collector; ...`, or under journald
    `<4>agent WARNING lost the collector; ...`."""

    def __init__(self, side: str, journal: bool | None = None) -> None:
        self.journal = to_journal() if journal is None else journal
        when = "" if self.journal else "%(asctime)s "
        super().__init__(f"{when}{side} %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return f"<{_PRIORITY.get(record.levelno, 6)}>{line}" if self.journal else line
