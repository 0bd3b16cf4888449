"""End to end: `flopgap-agent bench` reads a RAPL counter that a helper process advances at a
known rate, through the same code path a laptop uses (FLOPGAP_SYSFS_ROOT)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAST, REPO, Runner

TREE = Path(__file__).resolve().parent / "data" / "sysfs" / "intel-laptop-rapl"
RATE_W = 7.0

# The helper: advance psys's energy_uj at RATE_W with wrap-around, atomically, until told to
# stop (a file appears) or 60 s pass. It keeps its own monotonic clock.
WRITER = """
import os, sys, time, threading
domain, rate_w, stop = sys.argv[1], float(sys.argv[2]), sys.argv[3]
wrap = int(open(os.path.join(domain, "max_energy_range_uj")).read())
start_uj = int(open(os.path.join(domain, "energy_uj")).read())
t0 = time.monotonic()
tick = threading.Event()
print("writing", flush=True)
while not os.path.exists(stop) and time.monotonic() - t0 < 60:
    value = int(start_uj + (time.monotonic() - t0) * rate_w * 1e6) % wrap
    tmp = os.path.join(domain, ".energy_uj.tmp")
    with open(tmp, "w") as f:
        f.write(f"{value}\\n")
    os.replace(tmp, os.path.join(domain, "energy_uj"))
    tick.wait(0.0005)
"""


def test_bench_reports_the_power_the_counter_shows(
    tmp_path: Path, tiny_model: Path, agent_cli: Runner
) -> None:
    root = tmp_path / "board"
    shutil.copytree(TREE, root)
    domain = root / "sys" / "class" / "powercap" / "intel-rapl:1"  # psys, the headline
    assert (domain / "name").read_text().strip() == "psys"
    wrap = int((domain / "max_energy_range_uj").read_text())
    (domain / "energy_uj").write_text(f"{wrap - 3_000_000}\n")  # wraps 0.4 s in, mid-idle
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(domain), str(RATE_W), str(stop)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        proc = subprocess.run(
            [sys.executable, "-m", "agent", "bench", str(tiny_model), "--json",
             "--sysfs-root", str(root), *FAST, "--min-seconds", "1.5", "--idle-seconds", "0.5"],
            capture_output=True, text=True, timeout=120, cwd=REPO,
        )  # fmt: skip
    finally:
        stop.touch()
        writer.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    power = doc["power"]
    assert power is not None, doc["power_unavailable_reason"]
    assert power["source"] == "rapl" and power["headline_rail"] == "psys"
    assert power["avg_w"] == pytest.approx(RATE_W, rel=0.05)
    assert power["idle_w"] == pytest.approx(RATE_W, rel=0.05)
    n = doc["latency_ms"]["n"]
    assert power["energy_j_per_inference"] == pytest.approx(power["energy_j"] / n)
    del agent_cli  # the writer and bench run as plain subprocesses here


def test_no_power_source_is_reported_as_missing_with_the_reason(
    tiny_model: Path, agent_cli: Runner
) -> None:
    none = Path(__file__).resolve().parent / "data" / "sysfs" / "none"
    proc = agent_cli("bench", tiny_model, "--json", "--sysfs-root", none, *FAST)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["power"] is None
    assert "RAPL" in doc["power_unavailable_reason"] or "rapl" in doc["power_unavailable_reason"]
