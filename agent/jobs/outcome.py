"""What became of one job (`JobOutcome`), and the words for a job that failed.

A child that ends without sending a result or an error is judged by its exit status and the
last lines it wrote to its log (`log_tail`): a signal, an abort that mentions bad_alloc, or a
plain exit. agent.jobs.worker says which causes can and cannot be told apart.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_TAIL_LINES = 12


@dataclass(frozen=True)
class JobOutcome:
    """What became of one job. Times in seconds, latencies in ns; error_kind None when ok."""

    ok: bool
    document: dict[str, Any] | None
    latencies_ns: np.ndarray | None
    error_kind: str | None
    error: str | None
    wall_s: float
    measure_s: float | None


def classify_exit(exitcode: int | None, tail: str) -> tuple[str, str]:
    """(error_kind, error) for a child that ended without sending a result or an error."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        if -exitcode == signal.SIGKILL:
            return "crash", (
                "worker killed by SIGKILL, not sent by flopgap (most often the kernel's OOM "
                f"killer: check `dmesg` or the cgroup's memory.events){where(tail)}"
            )
        if any(t in tail.lower() for t in ("bad_alloc", "out of memory")):
            return "out_of_memory", f"worker killed by {name} out of memory{where(tail)}"
        return "crash", f"worker killed by {name}{where(tail)}"
    return "exit", f"worker exited with status {exitcode} without a result{where(tail)}"


def where(tail: str) -> str:
    """The end of an error message: the child's last output, or that it wrote nothing."""
    return f"; its last output: {tail}" if tail else "; it wrote nothing to stderr"


def progress_note(last: dict[str, Any] | None) -> str:
    """The end of a timeout's message: where the child's last progress report had got to."""
    if last is None:
        return "; the child sent no progress"
    return (
        f"; last progress: {last['phase']}, {last['iterations']} iterations "
        f"after {last['elapsed_s']:.1f} s"
    )


def log_tail(path: Path, max_bytes: int = 4096) -> str:
    """The last lines the child wrote to stdout/stderr, joined by ' | '."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - max_bytes))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-_TAIL_LINES:])
