"""One job per child process: results, each failure's kind and cause, progress, cancel.

The misbehaving children use the TEST-ONLY hook FLOPGAP_TEST_HOOK (agent.jobs.server).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.jobs import worker
from agent.jobs.server import TEST_HOOK_ENV

FAST: dict[str, Any] = {
    "min_seconds": 0,
    "min_iterations": 60,
    "warmup_runs": 2,
    "warmup_seconds": 0,
    "max_seconds": 20,
}
TIMEOUT_S = 60.0


@pytest.fixture(scope="module", autouse=True)
def fork_server() -> Iterator[worker.ServerInfo]:
    info = worker.start_server()
    yield info
    worker.stop_server()


def test_a_real_model_measures_in_a_child(
    tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="flopgap.agent.worker"):
        out = worker.run_job(tiny_model, FAST, "tiny", TIMEOUT_S)
    assert out.ok, out.error
    assert out.error_kind is None and out.error is None
    assert out.document is not None and out.document["model"]["name"] == "tiny"
    assert out.latencies_ns is not None and out.latencies_ns.dtype == np.int64
    assert out.latencies_ns.size >= 60 and (out.latencies_ns > 0).all()
    assert out.measure_s is not None and 0 < out.measure_s < out.wall_s
    assert "after the fork" not in caplog.text  # the server preloads all that measure() imports


def test_a_relative_model_path_resolves_against_the_callers_folder(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tiny_model.parent)
    assert worker.run_job(Path(tiny_model.name), FAST, "tiny", TIMEOUT_S).ok


def test_a_model_that_fails_to_load_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"this is not a protobuf")
    out = worker.run_job(bad, FAST, "garbage", TIMEOUT_S)
    assert not out.ok and out.error_kind == "model_error"
    assert out.error is not None and "not a valid ONNX model" in out.error
    assert out.document is None and out.latencies_ns is None and out.measure_s is None


def test_an_unknown_op_is_a_model_error(unknown_op_model: Path) -> None:
    out = worker.run_job(unknown_op_model, FAST, "bad", TIMEOUT_S)
    assert out.error_kind == "model_error", out.error


def test_an_inference_failure_is_a_measurement_error(runtime_failure_model: Path) -> None:
    out = worker.run_job(runtime_failure_model, FAST, "reshape", TIMEOUT_S)
    assert out.error_kind == "measurement_error", out.error


@pytest.mark.parametrize(
    "settings", [{"no_such_setting": 1}, {"min_iterations": 0}, {"seed": {1, 2}}]
)
def test_bad_settings_are_a_usage_error(tiny_model: Path, settings: dict[str, Any]) -> None:
    out = worker.run_job(tiny_model, settings, "tiny", TIMEOUT_S)
    assert out.error_kind == "usage_error", out.error


def test_a_missing_provider_is_a_provider_error(tiny_model: Path) -> None:
    out = worker.run_job(tiny_model, {**FAST, "provider": "NoSuchProvider"}, "t", TIMEOUT_S)
    assert out.error_kind == "provider_error", out.error


def test_a_segfault_is_a_crash_naming_the_signal_and_the_next_job_runs(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEST_HOOK_ENV, "segv")
    out = worker.run_job(tiny_model, FAST, "tiny", TIMEOUT_S)
    assert out.error_kind == "crash" and out.error is not None
    assert "SIGSEGV" in out.error
    assert "Segmentation fault" in out.error  # faulthandler's report, quoted from the child
    monkeypatch.delenv(TEST_HOOK_ENV)
    assert worker.run_job(tiny_model, FAST, "tiny", TIMEOUT_S).ok


def test_a_hook_for_another_model_leaves_this_one_alone(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEST_HOOK_ENV, "segv@crashy")
    assert worker.run_job(tiny_model, FAST, "tiny", TIMEOUT_S).ok
    assert worker.run_job(tiny_model, FAST, "crashy", TIMEOUT_S).error_kind == "crash"


def test_an_exit_without_result_gives_the_status_and_last_output(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEST_HOOK_ENV, "exit")
    out = worker.run_job(tiny_model, FAST, "tiny", TIMEOUT_S)
    assert out.error_kind == "exit" and out.error is not None
    assert "status 3" in out.error and "flopgap test hook: exit" in out.error


def test_a_hang_is_a_timeout_within_the_bound(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEST_HOOK_ENV, "hang")
    out = worker.run_job(tiny_model, FAST, "tiny", timeout_s=1.0)
    assert out.error_kind == "timeout" and out.error is not None
    assert "SIGTERM" in out.error
    assert 1.0 <= out.wall_s < 1.0 + 2.0  # the deadline, then SIGTERM, well before SIGKILL
    monkeypatch.delenv(TEST_HOOK_ENV)
    assert worker.run_job(tiny_model, FAST, "tiny", TIMEOUT_S).ok


def test_memory_error_under_the_limit_is_out_of_memory(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEST_HOOK_ENV, "oom")
    out = worker.run_job(tiny_model, FAST, "tiny", TIMEOUT_S, memory_limit_bytes=1 << 30)
    assert out.error_kind == "out_of_memory", out.error


def test_a_memory_limit_below_the_start_size_is_refused_plainly(tiny_model: Path) -> None:
    out = worker.run_job(tiny_model, FAST, "tiny", TIMEOUT_S, memory_limit_bytes=16 << 20)
    assert out.error_kind == "usage_error" and out.error is not None
    assert "RLIMIT_AS" in out.error


def test_progress_arrives_about_once_a_second(tiny_model: Path) -> None:
    seen: list[dict[str, Any]] = []
    out = worker.run_job(tiny_model, {**FAST, "min_seconds": 2.5}, "tiny", TIMEOUT_S, seen.append)
    assert out.ok, out.error
    phases = [p["phase"] for p in seen]
    assert phases[:2] == ["load", "warmup"] and phases.count("steady") >= 2
    steady = [p for p in seen if p["phase"] == "steady"]
    assert all(p["iterations"] > 0 and p["elapsed_s"] >= 0.99 for p in steady)
    assert [p["iterations"] for p in steady] == sorted(p["iterations"] for p in steady)
    assert all(p["median_ms"] > 0 and p["mean_ms"] > 0 for p in steady)  # a running median


def test_cancel_stops_the_child(tiny_model: Path) -> None:
    cancel = threading.Event()

    def on_progress(progress: dict[str, Any]) -> None:
        if progress["phase"] == "steady":
            cancel.set()

    settings = {**FAST, "min_seconds": 30, "max_seconds": 30}
    out = worker.run_job(tiny_model, settings, "tiny", TIMEOUT_S, on_progress, cancel=cancel)
    assert out.error_kind == "cancelled" and out.wall_s < 10


def test_jobs_never_overlap(tiny_model: Path) -> None:
    refused: list[Exception] = []

    def start_another(progress: dict[str, Any]) -> None:
        if progress["phase"] == "load":
            try:
                worker.run_job(tiny_model, FAST, "second", TIMEOUT_S)
            except worker.WorkerError as exc:
                refused.append(exc)

    assert worker.run_job(tiny_model, FAST, "first", TIMEOUT_S, start_another).ok
    assert len(refused) == 1 and "already running" in str(refused[0])


def test_a_dead_fork_server_is_replaced(tiny_model: Path) -> None:
    old = worker.start_server()
    os.kill(old.pid, signal.SIGKILL)
    out = worker.run_job(tiny_model, FAST, "tiny", TIMEOUT_S)
    assert out.ok, out.error
    assert worker.start_server().pid != old.pid


@pytest.mark.parametrize(
    ("exitcode", "tail", "kind", "needle"),
    [
        (-signal.SIGKILL, "", "crash", "OOM killer"),
        (-signal.SIGABRT, "terminate called after throwing std::bad_alloc", "out_of_memory", ""),
        (-signal.SIGBUS, "", "crash", "SIGBUS"),
        (2, "Traceback ... boom", "exit", "status 2"),
    ],
)
def test_classify_exit(exitcode: int, tail: str, kind: str, needle: str) -> None:
    got_kind, error = worker.classify_exit(exitcode, tail)
    assert got_kind == kind and needle in error
