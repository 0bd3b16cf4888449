"""`flopgap-agent service install|uninstall` into a tmp --unit-dir, checked by systemd-analyze."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.commands import cli
from tests.test_enroll import enroll, issue


@pytest.fixture
def enrolled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An enrolled agent config in tmp; returns its path."""
    monkeypatch.setenv("FLOPGAP_AGENT_CONFIG", str(tmp_path / "absent.toml"))
    bundle, _ = issue(tmp_path)
    assert enroll(tmp_path, bundle, tmp_path / "agent") == 0
    return tmp_path / "agent" / "agent.toml"


def _unprivileged_user() -> str:
    for name in ("daemon", "nobody"):
        try:
            if pwd.getpwnam(name).pw_uid != 0:
                return name
        except KeyError:
            continue
    pytest.skip("no unprivileged system user (daemon, nobody) on this machine")


def _verify(unit: Path, *extra: str) -> None:
    """systemd-analyze verify, where it exists and can start a manager here."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the unit is checked by content only")
    proc = subprocess.run(["systemd-analyze", "verify", *extra, str(unit)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    if "Failed to initialize manager" in proc.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    bad = [line for line in proc.stderr.splitlines() if "flopgap-agent.service" in line
           and "Special user nobody" not in line]  # fmt: skip
    assert not bad, proc.stderr


def test_system_unit(tmp_path: Path, enrolled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    units = tmp_path / "units"
    user = _unprivileged_user()
    argv = ["service", "install", "--config", str(enrolled), "--unit-dir", str(units)]
    assert cli.main([*argv, "--run-as", user]) == 0
    out = capsys.readouterr().out
    assert "sudo systemctl daemon-reload && sudo systemctl enable --now flopgap-agent" in out
    unit = (units / "flopgap-agent.service").read_text()
    exe = Path(sys.executable).parent / "flopgap-agent"
    assert f"ExecStart={exe.absolute()} run --config {enrolled}" in unit
    for line in ("Restart=on-failure", f"User={user}", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", f"ReadWritePaths={tmp_path / 'spool'}",
                 f"ReadWritePaths={tmp_path / 'cache'}", "WantedBy=multi-user.target"):  # fmt: skip
        assert line in unit.splitlines(), line
    assert cli.main([*argv, "--run-as", user]) == 0
    assert "unchanged:" in capsys.readouterr().out
    _verify(units / "flopgap-agent.service")

    assert cli.main(["service", "uninstall", "--unit-dir", str(units)]) == 0
    assert "removed" in capsys.readouterr().out and not (units / "flopgap-agent.service").exists()


def test_system_unit_never_runs_as_root(
    tmp_path: Path, enrolled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["service", "install", "--config", str(enrolled), "--unit-dir", str(tmp_path / "u")]
    if os.geteuid() == 0:  # the config's owner is root here
        assert cli.main(argv) == 2
    else:
        assert cli.main([*argv, "--run-as", "root"]) == 2
    assert "refusing a system unit that runs the agent as root" in capsys.readouterr().err


def test_user_unit(tmp_path: Path, enrolled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    units = tmp_path / "user-units"
    argv = ["service", "install", "--user", "--config", str(enrolled), "--unit-dir", str(units)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "systemctl --user enable --now" in out and "loginctl enable-linger" in out
    unit = (units / "flopgap-agent.service").read_text().splitlines()
    assert "WantedBy=default.target" in unit and "Restart=on-failure" in unit
    assert not [line for line in unit if line.startswith(("User=", "ProtectSystem"))]
    _verify(units / "flopgap-agent.service", "--user")


def test_install_needs_a_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["service", "install", "--config", str(tmp_path / "none.toml"), "--unit-dir",
            str(tmp_path)]  # fmt: skip
    assert cli.main(argv) == 2
    assert "flopgap-agent enroll BUNDLE first" in capsys.readouterr().err
