"""agent.engine.calibrate: hand-written ONNX bytes that onnx accepts, a short real calibration,
its verdict under a real foreign load, and what collector.enrich keeps of it.

Only that the numbers are positive and finite is checked, never how fast this machine is.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import psutil
import pytest
from onnx import TensorProto, helper

from agent.engine import calibrate as cal
from agent.engine.verdict import Limits
from collector import enrich
from collector.store import Store
from collector.store.model_files import ModelStore
from shared.errors import UsageError
from shared.protobuf_bytes import varint
from tests.conftest import Runner
from tests.fleet_helpers import start_agent, start_collector

SHORT_BYTES = 1 << 20


def _short(threads: int) -> dict[str, Any]:
    """A calibration small enough for a test (0.2 s, a 64 x 64 MatMul, 1 MiB streamed)."""
    return cal.calibrate(threads, seconds=0.2, matmul_n=64, stream_bytes=SHORT_BYTES)


def test_varint_matches_the_protobuf_encoding() -> None:
    assert varint(0) == b"\x00"
    assert varint(1) == b"\x01"
    assert varint(300) == b"\xac\x02"
    assert varint(1 << 35) == b"\x80\x80\x80\x80\x80\x01"


@pytest.mark.parametrize(
    ("model", "op", "inputs", "output"),
    [
        (cal.MATMUL_MODEL, "MatMul", {"a": ["m", "k"], "b": ["k", "n"]}, ("c", ["m", "n"])),
        (cal.ADD_MODEL, "Add", {"x": ["s"], "y": ["s"]}, ("z", ["s"])),
    ],
)
def test_hand_written_models_equal_what_onnx_helper_builds(
    model: bytes, op: str, inputs: dict[str, list[str]], output: tuple[str, list[str]]
) -> None:
    parsed = onnx.load_from_string(model)
    onnx.checker.check_model(parsed, full_check=True)
    expected = helper.make_model(
        helper.make_graph(
            [helper.make_node(op, list(inputs), [output[0]], name=op.lower())],
            f"calibrate_{op.lower()}",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in inputs.items()],
            [helper.make_tensor_value_info(output[0], TensorProto.FLOAT, output[1])],
        ),
        opset_imports=[helper.make_opsetid("", 13)],
        ir_version=8,
    )
    assert parsed == expected


def test_bound_runner_writes_into_the_callers_buffer() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 7), dtype=np.float32)
    b = rng.standard_normal((7, 3), dtype=np.float32)
    c = np.full((5, 3), np.nan, dtype=np.float32)
    run = cal._bound_runner(cal.MATMUL_MODEL, 1, {"a": a, "b": b}, ("c", c))
    run()
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
    x, y, z = np.arange(6, dtype=np.float32), np.ones(6, np.float32), np.zeros(6, np.float32)
    cal._bound_runner(cal.ADD_MODEL, 1, {"x": x, "y": y}, ("z", z))()
    np.testing.assert_array_equal(z, x + 1)


def test_short_calibration_returns_positive_finite_numbers() -> None:
    result = _short(1)
    assert set(result) >= {
        "peak_gflops",
        "bandwidth_gbs",
        "threads",
        "matmul_n",
        "stream_bytes",
        "onnxruntime",
        "method",
    }
    for key in ("peak_gflops", "bandwidth_gbs"):
        value = result[key]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, key
    assert result["threads"] == 1 and result["matmul_n"] == 64
    assert result["stream_bytes"] <= SHORT_BYTES and result["stream_bytes"] % 12 == 0
    assert result["onnxruntime"] == ort.__version__
    assert result["matmul_runs"] >= 1 and result["stream_runs"] >= 1


def test_sizes_shrink_to_fit_the_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    available = 4 * 12 * 1000  # the calibration may use a quarter: 12,000 bytes
    monkeypatch.setattr(cal.psutil, "virtual_memory", lambda: SimpleNamespace(available=available))
    result = cal.calibrate(1, seconds=0.05, matmul_n=4096, stream_bytes=1 << 30)
    assert result["stream_bytes"] <= 12_000
    n = result["matmul_n"]
    assert isinstance(n, int) and 3 * n * n * 4 <= 12_000


@pytest.mark.parametrize(
    "kwargs",
    [{"seconds": 0}, {"matmul_n": 0}, {"stream_bytes": 4}, {"seconds": -1.0}],
)
def test_bad_arguments_are_usage_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        cal.calibrate(1, **kwargs)


def test_negative_threads_are_refused() -> None:
    with pytest.raises(UsageError):
        _short(-1)


def test_models_load_from_a_file_too(tmp_path: Path) -> None:
    path = tmp_path / "matmul.onnx"
    path.write_bytes(cal.MATMUL_MODEL)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.shape for i in session.get_inputs()] == [["m", "k"], ["k", "n"]]


def test_peak_is_the_best_of_several_sizes() -> None:
    result = cal.calibrate(1, seconds=0.1, matmul_n=300, stream_bytes=SHORT_BYTES)
    assert result["matmul_n"] in (256, 300)  # each size below the cap is tried, and the cap
    assert result["matmul_runs"] >= 2 and result["peak_gflops"] > 0


def test_rounds_keep_the_best_and_the_spread() -> None:
    result = _short(1)
    assert result["rounds"] == cal.ROUNDS == 3
    for what, key in (("peak", "peak_gflops"), ("bandwidth", "bandwidth_gbs")):
        runs = result[f"{key}_runs"]
        assert len(runs) == 3 and result[key] == max(runs)
        assert result[f"{what}_spread"] == pytest.approx((max(runs) - min(runs)) / max(runs))
    assert isinstance(result["valid"], bool) and isinstance(result["invalid_reasons"], list)
    assert result["valid"] == (result["invalid_reasons"] == [])
    assert result["measured_at"].endswith("+00:00")  # UTC, ISO 8601
    assert result["system"]["own_cpu_cores"] is not None
    assert result["max_foreign_cpu_cores"] == Limits().max_foreign_cpu_cores


def test_one_round_has_no_spread() -> None:
    result = cal.calibrate(1, seconds=0.1, matmul_n=64, stream_bytes=SHORT_BYTES, rounds=1)
    assert result["peak_spread"] is None and len(result["peak_gflops_runs"]) == 1


def _busy_loops(count: int) -> list[subprocess.Popen[bytes]]:
    """`count` busy-looping children, returned once each has been seen burning CPU."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    deadline = time.monotonic() + 30
    waiting = threading.Event()  # never set: a polling period under a deadline
    for loop in loops:
        proc = psutil.Process(loop.pid)
        while proc.cpu_times().user < 0.1:  # a running loop, not a starting interpreter
            assert time.monotonic() < deadline, "the busy loops did not start in 30 s"
            waiting.wait(0.02)
    return loops


def _stop(loops: list[subprocess.Popen[bytes]]) -> None:
    for loop in loops:
        loop.kill()
    for loop in loops:
        loop.wait(timeout=10)


@pytest.fixture
def fresh_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no invalid calibrations counted by this process."""
    monkeypatch.setattr(enrich, "_invalid_calibrations", {})


def _document(calibration: dict[str, Any]) -> dict[str, Any]:
    return {"settings": {"threads": 1}, "calibration": calibration}


@pytest.mark.usefixtures("fresh_counts")
def test_a_calibration_under_foreign_load_is_invalid_and_not_stored(tmp_path: Path) -> None:
    store = Store(tmp_path / "results.sqlite")
    models = ModelStore(tmp_path / "models")
    cores = psutil.cpu_count() or 1
    loops = _busy_loops(cores)  # every core busy besides the calibration's one thread
    try:
        loaded = cal.calibrate(1, seconds=0.6, matmul_n=128, stream_bytes=4 * SHORT_BYTES)
    finally:
        _stop(loops)
    assert not loaded["valid"], loaded
    assert any(r.startswith("other processes used") for r in loaded["invalid_reasons"])
    assert loaded["system"]["foreign_cpu_cores"] > Limits().max_foreign_cpu_cores
    enrich.enrich(store, models, "a", "r-loaded", "0" * 64, _document(loaded))
    assert store.calibration_rows() == []  # never the device's figure
    assert enrich.needs_calibration(store, "a", {"threads": 1}, ort.__version__)  # asks again
    # Later, quiet: judged at a bar no other engineer's tests on this box can cross (every
    # core), so the only reasons left would be the board's own (frequency, throttling).
    quiet = cal.calibrate(
        1, seconds=0.6, matmul_n=128, stream_bytes=4 * SHORT_BYTES,
        limits=Limits(max_foreign_cpu_cores=float(cores)),
    )  # fmt: skip
    assert not any(r.startswith("other processes") for r in quiet["invalid_reasons"])
    enrich.enrich(store, models, "a", "r-quiet", "0" * 64, _document(quiet))
    rows = store.calibration_rows()
    if quiet["valid"]:
        assert [(r.agent_id, r.threads, r.peak_gflops) for r in rows] == [
            ("a", 1, quiet["peak_gflops"])
        ]
        assert rows[0].detail["bandwidth_gbs_runs"] == quiet["bandwidth_gbs_runs"]
        assert not enrich.needs_calibration(store, "a", {"threads": 1}, ort.__version__)
    else:
        assert rows == []
    store.close()


def _made_up(valid: bool | None) -> dict[str, Any]:
    """A calibration document as an agent sends it (None: an older agent, no verdict)."""
    doc: dict[str, Any] = {"peak_gflops": 100.0, "bandwidth_gbs": 30.0, "threads": 1,
                           "onnxruntime": ort.__version__}  # fmt: skip
    if valid is not None:
        doc.update(valid=valid, invalid_reasons=[] if valid else ["other processes used 1.00"])
    return doc


@pytest.mark.usefixtures("fresh_counts")
def test_a_stored_row_without_a_verdict_counts_as_valid(tmp_path: Path) -> None:
    store = Store(tmp_path / "results.sqlite")
    assert enrich.needs_calibration(store, "a", {"threads": 1}, ort.__version__)
    store.put_calibration("a", _made_up(None))  # what an older collector stored
    assert not enrich.needs_calibration(store, "a", {"threads": 1}, ort.__version__)
    assert enrich.needs_calibration(store, "a", {"threads": 1}, "0.0.1")  # another runtime
    assert enrich.needs_calibration(store, "a", {"threads": 2}, ort.__version__)
    store.close()


@pytest.mark.usefixtures("fresh_counts")
def test_invalid_calibrations_are_asked_again_a_bounded_number_of_times(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(tmp_path / "results.sqlite")
    settings = {"threads": 1}
    for attempt in range(enrich.MAX_INVALID_CALIBRATIONS):
        assert enrich.needs_calibration(store, "a", settings, ort.__version__), attempt
        assert not enrich.keep_calibration(store, "a", f"r{attempt}", 1, _made_up(False))
    assert not enrich.needs_calibration(store, "a", settings, ort.__version__)
    assert "is invalid, not stored: other processes used 1.00" in caplog.text
    assert "flopgap calibrate --agent a --threads 1" in caplog.text
    assert enrich.keep_calibration(store, "a", "forced", 1, _made_up(True))  # flopgap calibrate
    assert len(store.calibration_rows()) == 1
    assert not enrich.needs_calibration(store, "a", settings, ort.__version__)
    store.close()


# --- flopgap calibrate, against a real `flopgap serve` and a real agent -----------------------


def test_calibrate_help_names_its_flags(collector_cli: Runner) -> None:
    proc = collector_cli("calibrate", "--help")
    assert proc.returncode == 0, proc.stderr
    for flag in ("--agent NAME", "--threads", "--db", "--timeout", "--collector"):
        assert flag in proc.stdout
    assert "4: invalid" in " ".join(proc.stdout.split())


def test_calibrate_refuses_a_missing_database_before_connecting(
    tmp_path: Path, collector_cli: Runner
) -> None:
    proc = collector_cli("calibrate", "--agent", "a", "--db", tmp_path / "none.sqlite")
    assert proc.returncode == 2 and "no database at" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.integration
def test_calibrate_an_unknown_agent_then_a_real_one(tmp_path: Path, collector_cli: Runner) -> None:
    db = tmp_path / "results.sqlite"
    collector, endpoint = start_collector(db)  # --no-calibrate: only the forced one runs
    agent = start_agent(endpoint, "cal-agent", tmp_path)
    try:
        collector.expect(r"agent cal-agent registered", 60)
        proc = collector_cli("calibrate", "--agent", "ghost", "--db", db, "--collector", endpoint)
        assert proc.returncode == 2, proc.stderr
        [line] = proc.stderr.strip().splitlines()  # one line: what happened and what to do
        assert "no agent 'ghost' is registered" in line and "(registered: cal-agent)" in line
        assert "flopgap-agent run --name ghost" in line
        proc = collector_cli("calibrate", "--agent", "cal-agent", "--db", db, "--collector",
                             endpoint, timeout=300)  # fmt: skip
    finally:
        agent.stop()
        collector.stop()
    # Valid (exit 0, stored) or, on a busy test box, invalid (exit 4, not stored): either way
    # the verdict printed, the exit code and the store agree.
    assert proc.returncode in (0, 4), proc.stderr
    assert "calibration of cal-agent at 1 threads, taken 20" in proc.stdout
    rounds = r"peak\s+[\d.]+ GFLOP/s\s+\(rounds [\d.]+, [\d.]+, [\d.]+; spread"
    assert re.search(rounds, proc.stdout)
    store = Store(db)
    try:
        rows = store.calibration_rows()
    finally:
        store.close()
    if proc.returncode == 0:
        assert "verdict    valid" in proc.stdout and "stored as cal-agent's" in proc.stdout
        assert [(r.agent_id, r.threads) for r in rows] == [("cal-agent", 1)]
    else:
        assert "verdict    INVALID: " in proc.stdout
        assert "is invalid, not stored" in proc.stderr and rows == []
        assert collector.seen(r"calibration of cal-agent at 1 threads .* is invalid", 5)
