"""Contract: the collector's server and its everyday commands never load onnx, onnxruntime, the
agent or pandas, so `flopgap serve`, `flopgap status` and `flopgap export` start fast on any
host.

Only loading a campaign (onnx reads each model's inputs), counting FLOPs and the demo (which
runs an agent) may load them, and they do so inside the function that needs them. Each case runs
in a fresh interpreter, since this test process has long since imported everything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

HEAVY = ("onnx", "onnxruntime", "agent", "pandas")

_PROBE = """
import sys
{setup}
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
print("HEAVY=" + ",".join(heavy))
"""

_CLI = """
from collector.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # --help and --version exit through argparse
    code = exc.code
assert code in (0, None), code
"""

CASES = {
    "import collector.server": ("import collector.server", []),
    "import collector.scheduler": ("import collector.scheduler", []),
    "import collector.campaign": ("import collector.campaign", []),
    "import collector.flops": ("import collector.flops", []),
    "flopgap --version": (_CLI, ["--version"]),
    "flopgap --help": (_CLI, ["--help"]),
    "flopgap serve --help": (_CLI, ["serve", "--help"]),
    "flopgap status --help": (_CLI, ["status", "--help"]),
    "flopgap export --help": (_CLI, ["export", "--help"]),
    "flopgap report --help": (_CLI, ["report", "--help"]),
    "flopgap sweep build --help": (_CLI, ["sweep", "build", "--help"]),
    "flopgap sweep list": (_CLI, ["sweep", "list"]),
}


def _heavy_modules(setup: str, argv: list[str]) -> str:
    script = _PROBE.replace("{setup}", setup).replace("{heavy!r}", repr(set(HEAVY)))
    proc = subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_entry_point_loads_no_onnx_and_no_agent(case: str) -> None:
    setup, argv = CASES[case]
    assert _heavy_modules(setup, argv) == "HEAVY="


def test_export_runs_without_onnx_or_the_agent(tmp_path: Path) -> None:
    """A real `flopgap export` of a database with one (error) result, not only its --help (an
    export that selects nothing exits non-zero)."""
    db, csv = tmp_path / "results.sqlite", tmp_path / "out.csv"
    setup = (
        "from collector.store import Failure, Store\n"
        f"store = Store({str(db)!r})\n"
        "store.add_campaign('c1', 'c', {})\n"
        "store.add_jobs([('j1', 'c1', 'a1', 'f' * 64, 'tiny', {'threads': 1}, 0, 1, 60.0)])\n"
        "store.start_job('j1')\n"
        "store.fail_attempt('j1', Failure('r1', 'dev', 'crash', 'boom'))\n"
        "store.close()\n" + _CLI
    )
    assert _heavy_modules(setup, ["export", "--db", str(db), "--csv", str(csv)]) == "HEAVY="
    assert csv.is_file()


def test_the_probe_sees_a_heavy_import() -> None:
    """The check itself works: importing the agent's engine is reported."""
    assert _heavy_modules("import agent.engine.session", []).startswith("HEAVY=agent")
