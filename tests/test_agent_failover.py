"""The agent's list of collectors: which one it uses, when it moves on, which key it pins, and
how the flags and the config file give the list (agent.link.endpoints, agent.board.config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.board import config
from agent.commands import cli
from agent.link.endpoints import Endpoint, Endpoints, pair
from shared.errors import UsageError
from tests.conftest import Runner

A, B, C = "tcp://127.0.0.1:5001", "tcp://127.0.0.1:5002", "tcp://127.0.0.1:5003"


def test_it_moves_on_only_after_the_current_one_is_gone_for_the_timeout() -> None:
    ring = Endpoints(pair([A, B, C], []), now=0.0)
    assert ring.current.address == A
    assert not ring.should_move(5.0, now=5.0)  # never answered, but only for 5 s
    assert ring.should_move(5.0, now=5.1)
    assert ring.advance(now=5.1).address == B
    assert not ring.should_move(5.0, now=10.0)  # B's own clock started when it was tried
    ring.up()  # B answered
    assert not ring.should_move(5.0, now=100.0)
    ring.down(now=100.0)
    ring.down(now=103.0)  # the same outage: the clock keeps its start
    assert ring.should_move(5.0, now=105.5)
    assert ring.advance(now=105.5).address == C
    assert ring.advance(now=111.0).address == A  # round and round


def test_a_single_collector_is_never_left() -> None:
    ring = Endpoints([Endpoint(A)], now=0.0)
    ring.down(now=0.0)
    assert not ring.several and not ring.should_move(5.0, now=1e6)


def test_connecting_restarts_the_clock() -> None:
    ring = Endpoints(pair([A, B], []), now=0.0)
    ring.connecting(now=30.0)  # the fork server took its time before the first connect
    assert not ring.should_move(5.0, now=31.0)


def test_keys_are_shared_or_pinned_per_endpoint() -> None:
    assert [e.server_key for e in pair([A, B], [])] == [None, None]
    assert [e.server_key for e in pair([A, B], [b"k"])] == [b"k", b"k"]  # one fleet key pair
    assert [e.server_key for e in pair([A, B], [b"ka", b"kb"])] == [b"ka", b"kb"]
    with pytest.raises(UsageError, match="2 --collector-key files for 3 --collector") as err:
        pair([A, B, C], [b"ka", b"kb"])
    assert err.value.hint and "same order" in err.value.hint
    with pytest.raises(UsageError, match="no collector"):
        pair([], [])


def test_repeated_flags_give_the_list_in_order(tmp_path: Path) -> None:
    argv = ["run", "--collector", A, "--collector", B, "--collector-key", "ka.key",
            "--collector-key", "kb.key", "--name", "n"]  # fmt: skip
    merged = config.merge_run_settings(cli.build_parser().parse_args(argv))
    assert merged.collectors == [A, B] and merged.collector == A
    assert merged.collector_keys == [Path("ka.key"), Path("kb.key")]


def test_the_config_file_may_list_collectors_and_flags_replace_the_list(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(f'collector = ["{A}", "{B}"]\ncollector_key = ["a.key", "b.key"]\n')
    settings = config.load(path)
    assert settings["collector"] == A and settings["collectors"] == [A, B]  # `doctor`: the first
    assert settings["collector_keys"] == [tmp_path / "a.key", tmp_path / "b.key"]
    args = cli.build_parser().parse_args(["run", "--config", str(path)])
    assert config.merge_run_settings(args).collectors == [A, B]
    args = cli.build_parser().parse_args(["run", "--config", str(path), "--collector", C])
    assert config.merge_run_settings(args).collectors == [C]
    ini = tmp_path / "agent.ini"
    ini.write_text(f"[agent]\ncollector = {A}, {B}\n")
    assert config.load(ini)["collectors"] == [A, B]
    path.write_text("collector = []\n")
    with pytest.raises(UsageError, match="non-empty list of strings"):
        config.load(path)


def test_help_says_collector_repeats(agent_cli: Runner) -> None:
    proc = agent_cli("run", "--help")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    for words in ("repeat it for collectors sharing one store", "heartbeat timeout",
                  "one per --collector in the same order", "unacknowledged results"):  # fmt: skip
        assert words in text, words
