"""`flopgap-agent doctor` against fixture boards: the report's words and the exit code.

Fixture trees are copied to tmp and edited (governor, throttle flags), so each board's real
code path runs; commands are replayed from `<root>/commands/`, never run here.
"""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.commands import cli
from agent.probes import nodes
from collector.procs import Child
from shared.keys import create_pair
from tests.test_keys import run_keys

SYSFS = Path(__file__).parent / "data" / "sysfs"
CPU = "sys/devices/system/cpu"


def doctor(capsys: pytest.CaptureFixture[str], root: Path, *extra: str) -> tuple[int, str]:
    """Run doctor in-process on `root` (no config: FLOPGAP_AGENT_CONFIG points nowhere)."""
    code = cli.main(["doctor", "--sysfs-root", str(root), "--cache", str(root), *extra])
    return code, capsys.readouterr().out


def line(report: str, name: str) -> str:
    """The report line of check `name` plus its fix line, if any."""
    lines = report.splitlines()
    for i, text in enumerate(lines):
        if text[10:].startswith(name + " "):
            fix = lines[i + 1] if i + 1 < len(lines) and "->" in lines[i + 1] else ""
            return text + "\n" + fix
    raise AssertionError(f"no {name} line in:\n{report}")


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOPGAP_AGENT_CONFIG", str(tmp_path / "absent.toml"))


def ready_board(tmp_path: Path, governor: str = "performance") -> Path:
    """A laptop with readable RAPL, cpufreq, a thermal zone, free memory and a synced clock."""
    root = Path(shutil.copytree(SYSFS / "intel-laptop-rapl", tmp_path / "ready"))
    shutil.rmtree(root / "sys/class/power_supply")  # a charging battery would warn
    for cpu in range(4):
        freq = root / CPU / f"cpu{cpu}" / "cpufreq"
        freq.mkdir(parents=True)
        (freq / "scaling_governor").write_text(governor + "\n")
        (freq / "scaling_cur_freq").write_text("2400000\n")
    zone = root / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("x86_pkg_temp\n")
    (zone / "temp").write_text("45000\n")
    (root / "proc").mkdir()
    (root / "proc/meminfo").write_text("MemTotal: 16000000 kB\nMemAvailable: 8000000 kB\n")
    (root / "run/systemd/timesync").mkdir(parents=True)
    (root / "run/systemd/timesync/synchronized").touch()
    return root


def test_ready_board(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = doctor(capsys, ready_board(tmp_path))
    assert code == 0, report
    for name in ("onnxruntime", "power", "sensors", "governor", "throttling", "memory", "clock"):
        assert line(report, name).startswith("[     OK]"), report
    assert "sources: rapl" in report and "performance" in line(report, "governor")
    assert "7812 MB available" in report and "synchronized (systemd-timesyncd)" in report
    assert report.rstrip().endswith("ready to measure: 0 fail, 1 warning")  # collector unchecked


def test_powersave_governor_warns_with_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = doctor(capsys, ready_board(tmp_path, governor="powersave"))
    assert code == 0
    gov = line(report, "governor")
    assert gov.startswith("[WARNING]") and "powersave, not performance" in gov
    assert (
        "echo performance | sudo tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor" in gov
    )


def test_unreadable_rapl_names_the_grant_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = nodes.read_node

    def deny_energy(path: Path) -> str:  # what the kernel raises for a non-root user
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(nodes, "read_node", deny_energy)
    code, report = doctor(capsys, ready_board(tmp_path))
    power = line(report, "power")
    assert power.startswith("[WARNING]") and "no usable power source" in power
    assert "CVE-2020-8694" in power
    assert "sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj" in power
    assert code == 0  # latency is still measurable; energy is not


@pytest.mark.parametrize(
    ("raw", "status", "words", "code"),
    [
        ("0x50005", "[   FAIL]", "throttled now (0x50005): under_voltage, throttled", 1),
        ("0x50000", "[WARNING]", "throttled since boot (0x50000): under_voltage, throttled", 0),
        ("0x0", "[     OK]", "none (0x0)", 0),
    ],
)
def test_pi_throttling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: str, status: str, words: str, code: int
) -> None:
    root = Path(shutil.copytree(SYSFS / "rpi5", tmp_path / "rpi5"))
    (root / "commands/vcgencmd_get_throttled.txt").write_text(f"throttled={raw}\n")
    got, report = doctor(capsys, root)
    throttling = line(report, "throttling")
    assert throttling.startswith(status) and words in throttling, report
    if code:
        assert "27 W" in throttling and "NOT READY to measure: 1 fail" in report
    assert got == code
    assert line(report, "power").startswith("[     OK]") and "pi5-pmic" in report


def test_unsynced_clock_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = ready_board(tmp_path)
    (root / "run/systemd/timesync/synchronized").unlink()
    (root / "commands").mkdir()
    (root / "commands/timedatectl_ntp.txt").write_text("no\n")
    code, report = doctor(capsys, root)
    assert line(report, "clock").startswith("[WARNING]") and "timedatectl set-ntp" in report
    assert code == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_collector_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    code, report = doctor(
        capsys, ready_board(tmp_path), "--collector", endpoint, "--timeout", "0.5"
    )
    collector = line(report, "collector")
    assert (
        collector.startswith("[   FAIL]") and f"no answer from {endpoint} within 0.5 s" in collector
    )
    assert "flopgap serve" in collector
    assert code == 1 and "NOT READY to measure" in report


@pytest.fixture
def keyed_collector(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real collector with CURVE keys on 127.0.0.1; yields (endpoint, key folder)."""
    folder = tmp_path / "keys"
    run_keys("init", str(folder))
    argv = [sys.executable, "-m", "collector", "serve", "--bind", "tcp://127.0.0.1:0",
            "--db", str(tmp_path / "c.db"), "--keys", str(folder), "--no-calibrate"]  # fmt: skip
    child = Child(argv, "collector")
    try:
        yield child.expect(r"listening on (tcp://\S+)", 30).group(1), folder
    finally:
        child.stop()


def test_collector_reachable_and_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keyed_collector: tuple[str, Path]
) -> None:
    endpoint, folder = keyed_collector
    secret = tmp_path / "pi.key_secret"
    run_keys("agent", "pi", "--dir", str(folder), "--out", str(secret))
    root = ready_board(tmp_path)
    keys = ["--keys", str(secret), "--collector-key", str(folder / "collector.key")]
    code, report = doctor(capsys, root, "--collector", endpoint, *keys)
    assert f"{endpoint} reachable, keys accepted" in line(report, "collector"), report
    assert code == 0 and report.rstrip().endswith("ready to measure: 0 fail, 0 warning")

    stranger = tmp_path / "stranger.key_secret"  # a key the collector never allowlisted
    create_pair(tmp_path / "stranger.key", stranger)
    keys[1] = str(stranger)
    code, report = doctor(capsys, root, "--collector", endpoint, *keys)
    collector = line(report, "collector")
    assert collector.startswith("[   FAIL]") and "refused this agent's key" in collector, report
    assert "flopgap keys agent NAME --bundle" in collector and code == 1
