"""`flopgap-agent bench` exits honestly: bad output paths are refused before anything is
measured, and an invalid result is said plainly (and, with --strict, is a non-zero exit).

Real subprocesses of the real CLI on a tiny real model (tests/conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.conftest import FAST, Runner

INVALID = ["--max-cv", "0.000001"]  # no real run is that steady: the verdict is invalid


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("flopgap-agent: error: ")
    return lines[0]


def test_a_raw_path_in_a_missing_folder_fails_before_measuring(
    agent_cli: Runner, tiny_model: Path
) -> None:
    r = agent_cli("bench", tiny_model, "--raw", "/nonexistent/dir/x.npy", *FAST)
    assert r.returncode == 2
    assert r.stdout == ""  # no benchmark output: it never ran
    line = _one_error_line(r.stderr)
    assert "--raw /nonexistent/dir/x.npy: the folder /nonexistent/dir does not exist" in line
    assert "mkdir -p /nonexistent/dir" in line


def test_a_raw_path_that_is_a_folder_fails_before_measuring(
    agent_cli: Runner, tiny_model: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "out.npy"
    folder.mkdir()
    r = agent_cli("bench", tiny_model, "--raw", folder, "--json", *FAST)
    assert r.returncode == 2 and r.stdout == ""
    assert f"--raw {folder} is a folder" in _one_error_line(r.stderr)


def test_a_raw_path_without_the_suffix_is_checked_as_numpy_writes_it(
    agent_cli: Runner, tiny_model: Path, tmp_path: Path
) -> None:
    (tmp_path / "lat.npy").mkdir()  # np.save(".../lat") would write .../lat.npy
    r = agent_cli("bench", tiny_model, "--raw", tmp_path / "lat", *FAST)
    assert r.returncode == 2 and r.stdout == ""
    assert "lat.npy is a folder" in _one_error_line(r.stderr)


def test_a_missing_model_fails_before_waiting_for_the_device(agent_cli: Runner) -> None:
    r = agent_cli("bench", "/nonexistent/model.onnx", *FAST)
    assert r.returncode == 2 and r.stdout == ""
    assert "model file not found" in _one_error_line(r.stderr)


def test_an_invalid_result_is_said_plainly_and_exits_0_without_strict(
    agent_cli: Runner, tiny_model: Path, tmp_path: Path
) -> None:
    raw = tmp_path / "lat.npy"
    r = agent_cli("bench", tiny_model, "--raw", raw, *FAST, *INVALID)
    assert r.returncode == 0, r.stderr
    assert "INVALID" in r.stdout  # the summary's verdict row
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("flopgap-agent bench: INVALID result: ") and "cv" in last
    assert np.load(raw).size >= 60  # saved all the same


def test_strict_makes_an_invalid_result_exit_8_and_keeps_it(
    agent_cli: Runner, tiny_model: Path
) -> None:
    r = agent_cli("bench", tiny_model, "--json", "--strict", *FAST, *INVALID)
    assert r.returncode == 8, r.stderr
    doc = json.loads(r.stdout)  # stdout stays pure JSON; the verdict line is on stderr
    assert doc["valid"] is False and doc["invalid_reasons"]
    assert f"INVALID result: {'; '.join(doc['invalid_reasons'])}" in r.stderr


def test_strict_leaves_a_valid_result_at_exit_0(agent_cli: Runner, tiny_model: Path) -> None:
    r = agent_cli("bench", tiny_model, "--json", "--strict", *FAST, "--max-cv", "10")
    doc = json.loads(r.stdout)
    assert r.returncode == (0 if doc["valid"] else 8), r.stderr  # valid unless the box is busy
    assert ("INVALID" in r.stderr) is (not doc["valid"])


def test_help_documents_the_exit_codes(agent_cli: Runner) -> None:
    r = agent_cli("bench", "--help")
    text = " ".join(r.stdout.split())
    assert "--strict" in text and "--lock-timeout SECONDS" in text
    assert "7 the device stayed busy for --lock-timeout" in text
    assert "8 --strict and the result is invalid" in text
