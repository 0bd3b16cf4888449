"""Contract: the agent never loads pandas or onnx, so it stays installable on a 1 GB Pi."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import FAST, REPO

HEAVY = ("pandas", "onnx", "matplotlib", "scipy")

_PROBE = """
import importlib, pkgutil, sys
import agent, shared
for pkg in (agent, shared):
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
from agent.commands.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
print("HEAVY=" + ",".join(heavy))
sys.exit(code)
"""


def test_agent_and_shared_never_import_heavy_packages(tiny_model: Path) -> None:
    script = _PROBE.replace("{heavy!r}", repr(set(HEAVY)))
    proc = subprocess.run(
        [sys.executable, "-c", script, "bench", str(tiny_model), "--json", *FAST],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY=", proc.stdout[-500:]
