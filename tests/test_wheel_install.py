"""The wheel a board installs: built from this checkout, installed WITHOUT extras into a fresh
virtualenv, it benchmarks a zoo model and pulls in neither pandas nor onnx.

Slow (it downloads onnxruntime and numpy into the new venv: about a minute with network), so
it runs only with FLOPGAP_SLOW_TESTS=1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAST, REPO


def _run(*argv: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    assert proc.returncode == 0, f"{argv}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


def build_wheel(tmp_path: Path) -> Path:
    """A wheel of this checkout, built from a copy so no build/ folder is left in the repo."""
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("agent", "collector", "shared"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, source)
    [wheel] = wheels.glob("flopgap-*.whl")
    return wheel


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("FLOPGAP_SLOW_TESTS") != "1",
    reason="slow (installs onnxruntime into a new venv); set FLOPGAP_SLOW_TESTS=1",
)
def test_wheel_without_extras_benchmarks_a_zoo_model(tmp_path: Path) -> None:
    from collector.zoo import write_zoo  # the test process writes the model, not the board

    wheel = build_wheel(tmp_path)
    venv = tmp_path / "board-venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel)

    models = write_zoo(tmp_path / "zoo", names=["mlp"])
    proc = _run(venv / "bin" / "flopgap-agent", "bench", models["mlp"], "--json", *FAST)
    document = json.loads(proc.stdout)
    assert document["latency_ms"]["n"] >= 60

    probe = "import importlib.util as u; print([m for m in ('pandas', 'onnx') if u.find_spec(m)])"
    assert _run(python, "-c", probe).stdout.strip() == "[]"
    listed = _run(python, "-m", "pip", "list", "--format", "json").stdout
    names = {p["name"].lower() for p in json.loads(listed)}
    assert "onnxruntime" in names and not names & {"pandas", "onnx", "matplotlib", "pyarrow"}
