"""Processes and payloads shared by the fleet benchmarks (collector subprocess, tiny model)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from collector.procs import Child, ChildTimeout
from tests.conftest import matmul_graph, save_model


def collector(db: Path, heartbeat_s: float | None = None) -> tuple[Child, str]:
    """A real `flopgap serve` on a free 127.0.0.1 port; `heartbeat_s` None keeps its default.

    No calibration: it is device time spent measuring the board, not scheduling overhead."""
    argv = [sys.executable, "-m", "collector", "serve", "--bind", "tcp://127.0.0.1:0",
            "--db", str(db), "--no-calibrate"]  # fmt: skip
    if heartbeat_s is not None:
        argv += ["--heartbeat", str(heartbeat_s)]
    child = Child(argv, "collector")
    return child, child.expect(r"listening on (tcp://\S+)", 60).group(1)


def expect_count(child: Child, pattern: str, count: int, timeout: float) -> None:
    """Wait for `count` more lines matching `pattern`, in one linear pass over the output
    (seen() per line would rescan it all: quadratic for thousands of agents)."""
    deadline = time.monotonic() + timeout
    for done in range(count):
        remaining = deadline - time.monotonic()
        try:
            child.expect(pattern, max(remaining, 0.001))
        except ChildTimeout as exc:
            raise ChildTimeout(f"{done} of {count} lines /{pattern}/ within {timeout:g} s: "
                               f"{exc.message}") from exc  # fmt: skip


def tiny_model(folder: Path) -> Path:
    return save_model(matmul_graph(batch=1, width=16), folder / "tiny.onnx")
