"""Key files: created private, refused when others can read them, allowlisted by name.

Also the secure-by-default rule: a non-loopback endpoint without keys is refused with a hint
naming `flopgap keys`, and allowed with keys.
"""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import zmq

from collector import keys_cli
from shared import keys
from shared.errors import UsageError
from shared.transport import require_safe
from tests.conftest import REPO


def run_keys(*argv: str) -> int:
    """`flopgap keys ...` through keys_cli's own parser (as collector/cli.py registers it)."""
    parser = argparse.ArgumentParser(prog="flopgap")
    keys_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["keys", *argv])
    return int(args.func(args))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    assert run_keys("init", str(folder)) == 0
    return folder


def test_init_makes_a_private_folder_with_0600_files(key_dir: Path) -> None:
    assert mode(key_dir) == 0o700
    for sub in ("agents", "clients"):
        assert (key_dir / sub).is_dir() and mode(key_dir / sub) == 0o700
        assert not list((key_dir / sub).iterdir())  # empty allowlists
    for name in ("collector.key", "collector.key_secret"):
        assert mode(key_dir / name) == 0o600
    pair = keys.load_collector(key_dir)
    assert pair.public == keys.load_public(key_dir / "collector.key")
    assert zmq.curve_public(pair.secret) == pair.public  # a real CURVE pair


def test_files_are_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        keys.create_pair(tmp_path / "x.key", tmp_path / "x.key_secret")
    finally:
        os.umask(old)
    assert mode(tmp_path / "x.key") == mode(tmp_path / "x.key_secret") == 0o600


def test_agent_key_is_allowlisted_and_its_secret_written_for_transfer(key_dir: Path) -> None:
    assert run_keys("agent", "pi5-a", "--dir", str(key_dir)) == 0
    secret_file = key_dir / "issued" / "pi5-a.key_secret"
    assert mode(secret_file) == 0o600 and mode(key_dir / "agents" / "pi5-a.key") == 0o600
    pair = keys.load_secret(secret_file)
    assert keys.read_allowlist(key_dir) == {pair.public: "agent:pi5-a"}
    assert run_keys("client", "ops", "--dir", str(key_dir)) == 0
    assert set(keys.read_allowlist(key_dir).values()) == {"agent:pi5-a", "client:ops"}


def test_init_and_agent_never_replace_an_existing_key(key_dir: Path) -> None:
    before = (key_dir / "collector.key_secret").read_bytes()
    with pytest.raises(keys.KeyFileError, match="already exists"):
        run_keys("init", str(key_dir))
    assert (key_dir / "collector.key_secret").read_bytes() == before
    run_keys("agent", "a1", "--dir", str(key_dir))
    with pytest.raises(UsageError, match="already has a key") as err:
        run_keys("agent", "a1", "--dir", str(key_dir))
    assert "to revoke" in str(err.value.hint)


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x" * 65, "a b"])
def test_a_key_name_is_never_a_path(key_dir: Path, name: str) -> None:
    with pytest.raises(UsageError, match="bad key name"):
        run_keys("agent", name, "--dir", str(key_dir))
    assert not list((key_dir / "agents").iterdir())


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o660])
def test_a_secret_others_can_read_is_refused_with_the_chmod_hint(key_dir: Path, loose: int) -> None:
    secret_file = key_dir / "collector.key_secret"
    secret_file.chmod(loose)
    with pytest.raises(keys.KeyFileError) as err:
        keys.load_secret(secret_file)
    assert f"chmod 600 {secret_file}" in str(err.value)
    secret_file.chmod(0o600)
    keys.load_secret(secret_file)


def test_the_agent_cli_refuses_a_world_readable_secret(key_dir: Path, tmp_path: Path) -> None:
    run_keys("agent", "board", "--dir", str(key_dir))
    secret_file = key_dir / "issued" / "board.key_secret"
    secret_file.chmod(0o644)
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "run", "--collector", "tcp://127.0.0.1:9",
         "--keys", str(secret_file), "--collector-key", str(key_dir / "collector.key"),
         "--spool", str(tmp_path / "spool"), "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert f"chmod 600 {secret_file}" in proc.stderr


def test_a_public_key_file_is_not_a_secret(key_dir: Path) -> None:
    with pytest.raises(keys.KeyFileError, match="holds no secret key"):
        keys.load_secret(key_dir / "collector.key")


def test_malformed_and_missing_key_files_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key_secret"
    fd = os.open(bad, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b'curve\n    public-key = "short"\n    secret-key = "short"\n')
    os.close(fd)
    with pytest.raises(keys.KeyFileError, match="malformed"):
        keys.load_secret(bad)
    with pytest.raises(keys.KeyFileError, match="no key file"):
        keys.load_secret(tmp_path / "absent.key_secret")


def test_allowlist_follows_added_and_removed_key_files(key_dir: Path) -> None:
    allowlist = keys.Allowlist(key_dir)
    assert allowlist.identities() == []
    run_keys("agent", "late", "--dir", str(key_dir))
    public = keys.load_public(key_dir / "agents" / "late.key")
    allowlist.refresh(force=True)
    assert allowlist.callback("", public) and allowlist.allows("agent:late")
    (key_dir / "agents" / "late.key").unlink()  # revocation
    allowlist.refresh(force=True)
    assert not allowlist.callback("", public) and not allowlist.allows("agent:late")
    assert allowlist.denied == 1


def test_an_allowlist_folder_others_can_write_is_refused(key_dir: Path) -> None:
    (key_dir / "agents").chmod(0o777)
    with pytest.raises(keys.KeyFileError, match="chmod 700"):
        keys.Allowlist(key_dir)


def test_non_loopback_without_keys_names_flopgap_keys() -> None:
    with pytest.raises(UsageError) as err:
        require_safe("tcp://0.0.0.0:5555", insecure=False, action="bind")
    assert "without CURVE keys" in err.value.message
    assert "flopgap keys" in str(err.value.hint)
    require_safe("tcp://0.0.0.0:5555", insecure=False, action="bind", keys=True)
    require_safe("tcp://127.0.0.1:5555", insecure=False, action="bind")


def test_serve_on_a_non_loopback_address_without_keys_fails(tmp_path: Path) -> None:
    """Refused before any socket exists: nothing here listens beyond 127.0.0.1."""
    proc = subprocess.run(
        [sys.executable, "-m", "collector", "serve", "--bind", "tcp://0.0.0.0:0",
         "--db", str(tmp_path / "db.sqlite")],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "without CURVE keys" in proc.stderr and "flopgap keys" in proc.stderr
    assert not (tmp_path / "db.sqlite").exists()
