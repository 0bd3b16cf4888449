"""Shared fixtures: small real ONNX models built with onnx.helper, and CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.pg_server import PgServer
from tests.pg_server import missing_reason as pg_missing_reason

REPO = Path(__file__).resolve().parents[1]
KIT = REPO.parent / "shared"

# Flags that keep a real measurement short in tests (timing claims live in bench/).
FAST = [
    "--min-seconds",
    "0",
    "--min-iterations",
    "60",
    "--warmup",
    "2",
    "--warmup-seconds",
    "0",
    "--max-seconds",
    "20",
]


def save_model(graph: onnx.GraphProto, path: Path, opset: int = 17) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def matmul_graph(batch: int | str = 4, width: int = 64) -> onnx.GraphProto:
    w = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((width, width)).astype(np.float32), "W"
    )
    return helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
        "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, width])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, width])],
        [w],
    )


@pytest.fixture(scope="session", autouse=True)
def _session_device_lock(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One device lock (agent.board.device_lock) per test session, inherited by every agent
    and bench the tests start: measurements within a run exclude each other as on a board,
    but a run does not wait for another engineer's run on the same machine."""
    path = tmp_path_factory.mktemp("device-lock") / "device.lock"
    os.environ.setdefault("FLOPGAP_DEVICE_LOCK", str(path))


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    return save_model(matmul_graph(), tmp_path / "tiny.onnx")


@pytest.fixture
def dynamic_model(tmp_path: Path) -> Path:
    return save_model(matmul_graph(batch="batch"), tmp_path / "dynamic.onnx")


@pytest.fixture
def unknown_op_model(tmp_path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("NoSuchOp", ["x"], ["y"])],
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    return save_model(graph, tmp_path / "unknown_op.onnx")


def runtime_failure_graph() -> onnx.GraphProto:
    """Loads fine, fails at run time: Reshape to a shape the input cannot have."""
    shape = numpy_helper.from_array(np.array([3, 5], dtype=np.int64), "shape")
    return helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "reshape_fail",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 5])],
        [shape],
    )


@pytest.fixture
def runtime_failure_model(tmp_path: Path) -> Path:
    return save_model(runtime_failure_graph(), tmp_path / "runtime_fail.onnx")


Runner = Callable[..., subprocess.CompletedProcess[str]]


def _runner(module: str) -> Runner:
    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", module, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
        )

    return run


@pytest.fixture
def agent_cli() -> Runner:
    return _runner("agent")


@pytest.fixture
def collector_cli() -> Runner:
    return _runner("collector")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One real PostgreSQL server per test session (tests.pg_server); skipped without one."""
    reason = pg_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    server = PgServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database of its own for one test; its local cache folder under tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return pg_server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What --db a store test opens: a SQLite file, then a PostgreSQL database (one suite
    for both backends; the PostgreSQL run skips where no server can be started)."""
    if request.param == "sqlite":
        return str(tmp_path / "s.sqlite")
    return str(request.getfixturevalue("pg_url"))
