"""The Ansible role: syntax, then two runs against localhost where the second changes nothing.

Runs with `connection: local` into a tmp prefix, without sudo: no apt, no systemd
(`flopgap_manage_service: false`). flopgap is installed from a wheel of this checkout
(`--no-index --no-deps --find-links`), into a virtualenv that sees this test environment's
dependencies through a .pth file, so the test needs no network. Skipped without ansible
(`pip install ansible-core`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_enroll import issue
from tests.test_wheel_install import build_wheel

PLAYBOOK = REPO / "deploy" / "ansible" / "playbook.yml"


def _ansible_playbook() -> str:
    beside = Path(sys.executable).parent / "ansible-playbook"
    found = str(beside) if beside.is_file() else shutil.which("ansible-playbook")
    if found is None:
        pytest.skip("ansible-playbook is not installed (pip install ansible-core)")
    return found


def _env(tmp_path: Path) -> dict[str, str]:
    temp = str(tmp_path / "ansible-tmp")
    return {
        **os.environ,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": temp,
        "ANSIBLE_REMOTE_TEMP": temp,
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "FLOPGAP_AGENT_CONFIG": str(tmp_path / "no-config.toml"),
    }


def test_syntax(tmp_path: Path) -> None:
    inventory = REPO / "deploy" / "ansible" / "inventory.example.ini"
    proc = subprocess.run([_ansible_playbook(), "--syntax-check", "-i", str(inventory),
                           str(PLAYBOOK)], capture_output=True, text=True, timeout=120,
                          env=_env(tmp_path))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _venv_with_our_dependencies(venv: Path, tmp_path: Path) -> None:
    """A venv whose site-packages reaches this environment's packages, but not flopgap."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    deps = tmp_path / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not re.match(r"(__editable__|flopgap)|.*\.pth$", entry.name):
            (deps / entry.name).symlink_to(entry)
    [site] = venv.glob("lib/python3*/site-packages")
    (site / "test-deps.pth").write_text(f"{deps}\n")


def test_two_runs_second_changes_nothing(tmp_path: Path) -> None:
    playbook = _ansible_playbook()
    wheels = build_wheel(tmp_path).parent
    prefix = tmp_path / "prefix"
    venv = prefix / "venv"
    _venv_with_our_dependencies(venv, tmp_path)
    bundle, _ = issue(tmp_path, name="localboard")
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(f"[x86]\nlocalhost ansible_connection=local "
                         f"ansible_python_interpreter={sys.executable}\n")  # fmt: skip
    extra = {
        "flopgap_venv": str(venv),
        "flopgap_python": sys.executable,
        "flopgap_pip_extra_args": f"--no-index --no-deps --find-links {wheels}",
        "flopgap_config_dir": str(prefix / "config"),
        "flopgap_bundle": str(bundle),
        "flopgap_spool": str(prefix / "spool"),
        "flopgap_cache": str(prefix / "cache"),
        "flopgap_tags": {"board": "x86", "site": "ci"},
        "flopgap_install_system_packages": False,
        "flopgap_manage_service": False,
    }
    (tmp_path / "vars.json").write_text(json.dumps(extra))
    argv = [playbook, "-i", str(inventory), "-e", f"@{tmp_path / 'vars.json'}", str(PLAYBOOK)]
    recaps = []
    for _ in range(2):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                              env=_env(tmp_path))  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        recaps.append(re.search(r"localhost\s*:\s*(ok=.*)", proc.stdout).group(1))  # type: ignore[union-attr]
    assert "failed=0" in recaps[0] and "changed=0" not in recaps[0], recaps
    assert "changed=0" in recaps[1] and "failed=0" in recaps[1], recaps
    config = (prefix / "config" / "agent.toml").read_text()
    assert 'name = "localboard"' in config and '"site" = "ci"' in config
    assert (venv / "bin" / "flopgap-agent").is_file()
    proc = subprocess.run([str(venv / "bin" / "flopgap-agent"), "doctor", "--config",
                           str(prefix / "config" / "agent.toml"), "--timeout", "0.3"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "collector" in proc.stdout and "no answer from tcp://127.0.0.1:5555" in proc.stdout
