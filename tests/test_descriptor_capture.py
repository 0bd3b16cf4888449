"""`flopgap-agent capture` copies what the descriptor probes read (files and command answers)
so the captured tree describes the same board; `flopgap-agent doctor` shows each field."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.board.facts.registry import describe_facts
from agent.commands import cli
from agent.probes.capture import capture
from agent.probes.commands import runner_for

SYSFS = Path(__file__).resolve().parent / "data" / "sysfs"
TREES = ["jetson-orin-nx-maxn", "jetson-orin-nx-15w", "rpi5-throttled", "x86-epyc-vm"]


@pytest.mark.parametrize("tree", TREES)
def test_a_captured_tree_describes_the_same_board(tree: str, tmp_path: Path) -> None:
    out = tmp_path / tree
    capture(out, root=SYSFS / tree)
    again = describe_facts(out, runner_for(out))
    first = describe_facts(SYSFS / tree, runner_for(SYSFS / tree))
    assert again.values == first.values and again.missing == first.missing


def test_capture_keeps_the_command_answers_and_lists_the_description(tmp_path: Path) -> None:
    capture(tmp_path / "maxn", root=SYSFS / "jetson-orin-nx-maxn")
    capture(tmp_path / "15w", root=SYSFS / "jetson-orin-nx-15w")
    capture(tmp_path / "pi", root=SYSFS / "rpi5-throttled")
    assert (tmp_path / "maxn/commands/nvpmodel_query.txt").read_text().endswith("MAXN\n0\n")
    assert (tmp_path / "maxn/etc/nvpmodel.conf").is_file()
    assert (tmp_path / "15w/commands/nvpmodel_query.error").read_text() == "nvpmodel -q: exit 1\n"
    assert (tmp_path / "15w/var/lib/nvpmodel/status").read_text().startswith("pmode:0002")
    assert (tmp_path / "pi/commands/vcgencmd_version.txt").is_file()
    listed = (tmp_path / "maxn/CAPTURE.txt").read_text()
    assert "described: power_mode = MAXN" in listed and "described: dla = 2" in listed
    assert "hostname" not in listed


def report(capsys: pytest.CaptureFixture[str], root: Path) -> dict[str, str]:
    """doctor's report on `root`, as check name -> its line."""
    cli.main(["doctor", "--sysfs-root", str(root), "--cache", str(root)])
    lines = capsys.readouterr().out.splitlines()
    return {text[10:].split(" ", 1)[0]: text for text in lines if text.startswith("[")}


def test_doctor_shows_the_description_and_what_is_missing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLOPGAP_AGENT_CONFIG", str(tmp_path / "absent.toml"))
    orin = report(capsys, SYSFS / "jetson-orin-nx-15w")
    assert "power_mode 15W; power_mode_id 2" in orin["nvpmodel"]
    assert "l4t 35.4.1; jetpack 5.1.2" in orin["l4t"]
    assert "jetson_clocks off" in orin["jetson_clocks"]
    assert "gpu ga10b; dla 2" in orin["accelerators"]
    assert "missing pi_firmware (looked for vcgencmd version" in orin["pi_firmware"]
    pi = report(capsys, SYSFS / "rpi5-throttled")
    assert "throttled 0x50005; throttled_now under_voltage,throttled" in pi["pi_throttled"]
    assert "missing power_mode, power_mode_id (looked for nvpmodel -q" in pi["nvpmodel"]
