"""Enrolment bundles (`flopgap keys agent --bundle`, `flopgap-agent enroll`) and the agent config.

An enrolled config is what `run` reads: the last test starts a real agent from it against a
real keyed collector on 127.0.0.1.
"""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.board import config
from agent.board.enroll import read_bundle
from agent.commands import cli
from collector.procs import Child
from shared import keys
from shared.errors import UsageError
from tests.test_keys import run_keys

COLLECTOR = "tcp://127.0.0.1:5555"


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOPGAP_AGENT_CONFIG", str(tmp_path / "absent.toml"))


def issue(
    tmp_path: Path, name: str = "pi5-a", folder: str = "keys", collector: str = COLLECTOR
) -> tuple[Path, Path]:
    """A collector key folder and a bundle for agent `name`; returns (bundle, key folder)."""
    keys_dir = tmp_path / folder
    if not keys_dir.exists():
        run_keys("init", str(keys_dir))
    bundle = tmp_path / f"{folder}-{name}.json"
    run_keys("agent", name, "--dir", str(keys_dir), "--bundle", str(bundle),
             "--collector", collector)  # fmt: skip
    return bundle, keys_dir


def enroll(tmp_path: Path, bundle: Path, folder: Path) -> int:
    return cli.main(["enroll", str(bundle), "--dir", str(folder), "--spool",
                     str(tmp_path / "spool"), "--cache", str(tmp_path / "cache")])  # fmt: skip


def test_bundle_is_one_private_file_with_everything(tmp_path: Path) -> None:
    bundle, keys_dir = issue(tmp_path)
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    got = read_bundle(bundle)
    assert got.name == "pi5-a" and got.collector == COLLECTOR
    assert got.collector_public == keys.load_public(keys_dir / "collector.key")
    assert keys.read_allowlist(keys_dir) == {got.own.public: "agent:pi5-a"}
    assert not (keys_dir / "issued" / "pi5-a.key_secret").exists()  # the bundle is the only copy


def test_bundle_needs_a_collector_address(tmp_path: Path) -> None:
    run_keys("init", str(tmp_path / "k"))
    with pytest.raises(UsageError, match="--bundle needs --collector"):
        run_keys("agent", "a", "--dir", str(tmp_path / "k"), "--bundle", str(tmp_path / "b"))


def test_enroll_installs_keys_and_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle, keys_dir = issue(tmp_path)
    folder = tmp_path / "agent"
    assert enroll(tmp_path, bundle, folder) == 0
    assert "enrolled:" in capsys.readouterr().out
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("pi5-a.key_secret", "collector.key", "agent.toml"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    settings = config.load(folder / "agent.toml")
    assert settings["collector"] == COLLECTOR and settings["name"] == "pi5-a"
    assert settings["keys"] == folder / "pi5-a.key_secret"
    assert settings["spool"] == tmp_path / "spool" and (tmp_path / "cache").is_dir()
    pair = keys.load_peer_keys(settings["keys"], settings["collector_key"])
    assert pair.server_public == keys.load_public(keys_dir / "collector.key")

    assert enroll(tmp_path, bundle, folder) == 0  # again: nothing changes (Ansible's changed=0)
    assert "unchanged:" in capsys.readouterr().out


def test_enroll_refuses_a_readable_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle, _ = issue(tmp_path)
    bundle.chmod(0o640)
    assert enroll(tmp_path, bundle, tmp_path / "agent") == 2
    err = capsys.readouterr().err
    assert "other users can read it (mode 0640)" in err and f"chmod 600 {bundle}" in err
    assert not (tmp_path / "agent").exists()


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda doc: "{not json", "not JSON"),
        (lambda doc: json.dumps({**doc, "secret_key": "," * 40}), "secret_key is not a CURVE key"),
        (lambda doc: json.dumps({**doc, "format": "other"}), "not a flopgap agent bundle"),
        (lambda doc: json.dumps({**doc, "extra": 1}), "unknown field 'extra'"),
        (lambda doc: json.dumps({**doc, "public_key": doc["collector_public_key"]}), "pair does"),
    ],
)
def test_enroll_refuses_a_corrupt_bundle(
    tmp_path: Path, edit: Callable[[dict[str, Any]], str], words: str
) -> None:
    bundle, _ = issue(tmp_path)
    bundle.write_text(edit(json.loads(bundle.read_text())))
    with pytest.raises(UsageError, match=r"corrupt bundle|not a flopgap") as err:
        read_bundle(bundle)
    assert words in str(err.value)


def test_enroll_refuses_a_bundle_for_another_collector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = issue(tmp_path, folder="keys-a")
    other, _ = issue(tmp_path, folder="keys-b")
    folder = tmp_path / "agent"
    assert enroll(tmp_path, first, folder) == 0
    before = (folder / "agent.toml").read_text()
    assert enroll(tmp_path, other, folder) == 2
    assert "the bundle is for another collector" in capsys.readouterr().err
    assert (folder / "agent.toml").read_text() == before


def test_config_unknown_key_and_types(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('collector = "tcp://127.0.0.1:1"\ncolector_key = "x"\n')
    with pytest.raises(UsageError, match="unknown key 'colector_key'"):
        config.load(path)
    path.write_text('cache_max_mb = "big"\n')
    with pytest.raises(UsageError, match="cache_max_mb must be int"):
        config.load(path)
    ini = tmp_path / "agent.ini"
    ini.write_text("[agent]\nname = a\nmemory_limit_mb = 512\nspool = s\n[tags]\nboard = pi5\n")
    assert config.load(ini) == {"name": "a", "memory_limit_mb": 512,
                                "spool": tmp_path / "s", "tags": {"board": "pi5"}}  # fmt: skip
    ini.write_text("[agent]\nname = a\nspeed = 3\n")
    with pytest.raises(UsageError, match="unknown key 'speed'"):
        config.load(ini)


def test_run_flags_override_the_config(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('collector = "tcp://127.0.0.1:1"\nname = "file"\ncache_max_mb = 10\n'
                    '[tags]\nboard = "pi5"\n')  # fmt: skip
    args = cli.build_parser().parse_args(["run", "--config", str(path), "--name", "flag"])
    merged = config.merge_run_settings(args)
    assert (merged.collector, merged.name, merged.cache_max_mb) == ("tcp://127.0.0.1:1", "flag", 10)
    assert merged.config_tags == {"board": "pi5"} and merged.spool is None
    with pytest.raises(UsageError, match="no collector"):
        config.merge_run_settings(cli.build_parser().parse_args(["run"]))


def test_run_from_an_enrolled_config_reaches_a_keyed_collector(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    run_keys("init", str(keys_dir))
    argv = [sys.executable, "-m", "collector", "serve", "--bind", "tcp://127.0.0.1:0",
            "--db", str(tmp_path / "c.db"), "--keys", str(keys_dir), "--no-calibrate"]  # fmt: skip
    collector = Child(argv, "collector")
    agent = None
    try:
        endpoint = collector.expect(r"listening on (tcp://\S+)", 30).group(1)
        bundle, _ = issue(tmp_path, collector=endpoint)
        assert enroll(tmp_path, bundle, tmp_path / "agent") == 0
        agent = Child([sys.executable, "-m", "agent", "run", "--config",
                       str(tmp_path / "agent" / "agent.toml")], "agent")  # fmt: skip
        agent.expect("connected to the collector", 30)
        collector.expect("pi5-a", 30)
    finally:
        if agent is not None:
            agent.stop()
        collector.stop()
