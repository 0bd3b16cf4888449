"""Text parsers of command-based sources (tegrastats, vcgencmd) and the command runner."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent.probes import pi_pmic
from agent.probes.commands import Command, CommandRunner
from agent.probes.tegrastats import parse_line

SYSFS = Path(__file__).resolve().parent / "data" / "sysfs"


def first_line(board: str) -> str:
    return (SYSFS / board / "commands" / "tegrastats.txt").read_text().splitlines()[0]


def test_tegrastats_nano_line() -> None:
    line = parse_line(first_line("jetson-nano-jp4"))
    assert (line.ram_used_mb, line.ram_total_mb) == (1589, 3956)
    assert line.cpu == [(12, 1479), (4, 1479), (3, 1479), (2, 1479)]
    assert line.gr3d_percent == 0
    assert line.temps_c["CPU"] == 36.5 and line.temps_c["thermal"] == 35.5
    assert line.rails_mw == {
        "POM_5V_IN": (2000, 2000),
        "POM_5V_GPU": (120, 120),
        "POM_5V_CPU": (400, 400),
    }


def test_tegrastats_orin_line() -> None:
    line = parse_line(first_line("jetson-orin"))
    assert (line.ram_used_mb, line.ram_total_mb) == (2754, 7620)
    assert line.cpu[:2] == [(2, 729), (1, 729)] and line.cpu[4:] == [None, None]  # off
    assert line.gr3d_percent == 0
    assert line.temps_c["cpu"] == 48.5 and line.temps_c["tj"] == 48.5
    assert line.rails_mw == {
        "VDD_IN": (5000, 4900),
        "VDD_CPU_GPU_CV": (600, 600),
        "VDD_SOC": (1400, 1400),
    }


def test_tegrastats_does_not_mistake_memory_for_rails() -> None:
    line = parse_line("RAM 1589/3956MB SWAP 0/1978MB IRAM 0/252kB(lfb 252kB)")
    assert line.rails_mw == {} and line.ram_used_mb == 1589


def test_pmic_parse() -> None:
    text = "  VDD_CORE_A current(7)=0.81262990A\n  VDD_CORE_V volt(15)=0.88187950V\n"
    text += "     EXT5V_V volt(24)=5.10897400V\n"
    assert pi_pmic.parse_pmic(text) == {"VDD_CORE": pytest.approx(0.81262990 * 0.88187950)}
    assert pi_pmic.parse_temp("temp=48.8'C") == 48.8
    assert pi_pmic.parse_temp("nope") is None


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def test_real_runner_output_failure_missing_timeout_and_stream() -> None:
    runner = CommandRunner(timeout_s=5.0)
    assert runner.run(Command("ok", python("print('hi')"))).text == "hi\n"
    failed = runner.run(Command("bad", python("import sys; sys.exit('boom')")))
    assert failed.text is None and "exit 1: boom" in (failed.error or "")
    missing = runner.run(Command("nope", ("flopgap-no-such-program",)))
    assert missing.missing
    stream = Command(
        "stream",
        python("import sys\nwhile True: print('line', flush=True)"),
        stream=True,
    )
    assert runner.run(stream).text == "line\n"
    hang = Command("hang", python("import threading; threading.Event().wait()"))
    timed_out = CommandRunner(timeout_s=0.3).run(hang)
    assert timed_out.text is None and "timed out" in (timed_out.error or "")
