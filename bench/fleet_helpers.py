"""Processes and payloads shared by the fleet benchmarks (collector subprocess, tiny model)."""

from __future__ import annotations

import sys
from pathlib import Path

from collector.procs import Child
from tests.conftest import matmul_graph, save_model


def collector(db: Path) -> tuple[Child, str]:
    # No calibration: it is device time spent measuring the board, not scheduling overhead.
    child = Child([sys.executable, "-m", "collector", "serve", "--bind", "tcp://127.0.0.1:0",
                   "--db", str(db), "--no-calibrate"], "collector")  # fmt: skip
    return child, child.expect(r"listening on (tcp://\S+)", 60).group(1)


def tiny_model(folder: Path) -> Path:
    return save_model(matmul_graph(batch=1, width=16), folder / "tiny.onnx")
