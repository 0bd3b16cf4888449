"""The agent on aarch64: tools/aarch64_check.sh installs this checkout's wheel into an arm64
Debian userland under qemu-user-static and runs `bench` and `doctor` there.

The emulated run takes minutes (the first one builds the userland: 10-20 more), needs root and
the network, so it runs only with FLOPGAP_SLOW_TESTS=1 (`make aarch64` runs the script alone).
The checks on the document it produces run always: they are what decides a pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tools.aarch64_document import TIMING_FIELDS, main, problems, summary

SCRIPT = REPO / "tools" / "aarch64_check.sh"
CANNOT_RUN = 2  # the script's exit status when this machine cannot run it (not root, ...)


def board_document(arch: str = "aarch64") -> dict[str, Any]:
    """The parts of a bench document the check reads, as an aarch64 run writes them."""
    return {
        "model": {"name": "mlp"},
        "load_ms": 812.5,
        "first_inference_ms": 40.25,
        "latency_ms": {"n": 5, "p50": 7.75, "p99": 9.125},
        "device": {"arch": arch, "python": "3.11.2", "onnxruntime": "1.23.2"},
    }


def test_an_aarch64_document_passes_and_its_summary_holds_no_timing() -> None:
    document = board_document()
    assert problems(document, 0) == []
    brief = summary(document, 0)
    assert brief["arch"] == "aarch64" and brief["samples"] == 5
    assert brief["timing_fields_present"] == list(TIMING_FIELDS)
    written = json.dumps(brief)
    assert not [t for t in ("812.5", "40.25", "7.75", "9.125") if t in written], written


def test_a_document_from_the_host_architecture_is_refused() -> None:
    [problem] = problems(board_document("x86_64"), 0)
    assert "'x86_64', not 'aarch64'" in problem


def test_missing_timings_too_few_runs_and_a_failed_doctor_are_each_named() -> None:
    document = board_document()
    del document["first_inference_ms"]
    document["latency_ms"] = {"n": 2, "p50": 0.0, "p99": 1.0}
    found = problems(document, 1)
    assert any(p.startswith("first_inference_ms is None") for p in found)
    assert any(p.startswith("latency_ms.p50 is 0.0") for p in found)
    assert any("fewer than 5 timed runs" in p for p in found)
    assert any("doctor exited 1" in p for p in found)


def test_the_command_line_writes_the_summary_and_exits_1_on_a_problem(tmp_path: Path) -> None:
    result, rc, out = tmp_path / "result.json", tmp_path / "doctor.rc", tmp_path / "summary.json"
    result.write_text(json.dumps(board_document("x86_64")))
    rc.write_text("0\n")
    assert main([str(result), str(rc), str(out)]) == 1
    assert json.loads(out.read_text())["arch"] == "x86_64"


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(
    os.environ.get("FLOPGAP_SLOW_TESTS") != "1",
    reason="slow (builds an arm64 userland, runs the agent under qemu); set FLOPGAP_SLOW_TESTS=1",
)
def test_the_wheel_installs_measures_and_passes_doctor_on_aarch64(tmp_path: Path) -> None:
    out = tmp_path / "aarch64"
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([str(SCRIPT), str(out)], capture_output=True, text=True, env=env,
                          timeout=3500)  # fmt: skip
    if proc.returncode == CANNOT_RUN:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

    document = json.loads((out / "result.json").read_text())
    assert document["device"]["arch"] == "aarch64"
    assert document["latency_ms"]["n"] >= 5 and document["first_inference_ms"] > 0
    assert document["device"]["python"].startswith("3.")
    board = (out / "board.txt").read_text().splitlines()
    assert board[0] == "machine aarch64"
    assert (out / "doctor.rc").read_text().strip() == "0"
    doctor = (out / "doctor.txt").read_text()
    assert "[     OK] onnxruntime" in doctor and "CPUExecutionProvider" in doctor
    assert doctor.rstrip().splitlines()[-1].startswith("ready to measure: 0 fail")
    assert "aarch64 check passed" in (out / "aarch64_check.log").read_text()
