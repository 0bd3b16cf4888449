"""Provider lists with options and session config entries: flags, wire form, real sessions.

Why real sessions: what ONNX Runtime accepts, ignores or refuses is its behaviour, not ours; the
tests build real InferenceSessions (CPUExecutionProvider is what this machine has) and check
that an entry that changes loading takes effect, and that a refusal names the option.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from agent.engine.measure import MeasureSettings, measure
from agent.engine.options import add_measure_flags, settings_from_args, settings_from_dict
from agent.engine.session import SessionSettings, load_session
from shared.errors import ProviderError, UsageError
from shared.session_specs import pairs_text, parse_provider_flag
from tests.conftest import FAST, Runner

CPU = "CPUExecutionProvider"


def _flags(*argv: str) -> MeasureSettings:
    parser = argparse.ArgumentParser()
    add_measure_flags(parser)
    return settings_from_args(parser.parse_args(list(argv)), {})


def test_provider_flag_takes_options_and_repeats_in_order() -> None:
    assert parse_provider_flag("XnnpackExecutionProvider:intra_op_num_threads=2, a=b") == {
        "name": "XnnpackExecutionProvider",
        "options": {"intra_op_num_threads": "2", "a": "b"},
    }
    got = _flags("--provider", "XnnpackExecutionProvider:intra_op_num_threads=2",
                 "--provider", CPU)  # fmt: skip
    assert got.session.provider == "XnnpackExecutionProvider"
    assert [p["name"] for p in got.session.providers or ()] == ["XnnpackExecutionProvider", CPU]
    with pytest.raises(UsageError, match="is not key=value"):
        parse_provider_flag(f"{CPU}:use_arena")


def test_one_provider_without_options_is_the_old_provider_setting() -> None:
    """Stored results and old campaigns say `provider` alone; `--provider X` must mean the same."""
    got = _flags("--provider", CPU)
    assert (got.session.provider, got.session.providers) == (CPU, None)
    assert got.as_dict()["providers"] is None
    assert settings_from_dict({"provider": CPU}).as_dict() == MeasureSettings().as_dict()


def test_session_config_flag_repeats_into_a_table() -> None:
    got = _flags("--session-config", "session.intra_op.allow_spinning=0",
                 "--session-config", "session.set_denormal_as_zero=1")  # fmt: skip
    assert dict(got.session.session_config) == {
        "session.intra_op.allow_spinning": "0",
        "session.set_denormal_as_zero": "1",
    }
    assert pairs_text(got.session.session_config) == (
        "session.intra_op.allow_spinning=0;session.set_denormal_as_zero=1"
    )
    with pytest.raises(UsageError, match="not key=value"):
        _flags("--session-config", "session.intra_op.allow_spinning")


def test_wire_form_round_trips_and_refuses_a_disagreeing_provider() -> None:
    raw = MeasureSettings().as_dict()
    raw |= {"provider": CPU, "providers": [{"name": CPU, "options": {"x": "1"}}],
            "session_config": {"session.set_denormal_as_zero": "1"}}  # fmt: skip
    back = settings_from_dict(raw).as_dict()
    assert back["providers"] == ({"name": CPU, "options": {"x": "1"}},)
    assert back["session_config"] == raw["session_config"]
    with pytest.raises(UsageError, match="disagree"):
        settings_from_dict({"provider": "CUDAExecutionProvider", "providers": raw["providers"]})
    with pytest.raises(UsageError, match="lists a provider twice"):
        settings_from_dict({"providers": [{"name": CPU}, {"name": CPU}]})


def test_config_entries_reach_the_session(tiny_model: Path) -> None:
    """session.load_model_format decides how the file is parsed: ORT format refuses an .onnx
    file, named by our message; ONNX loads it. Spinning and denormals load as given."""
    ok = SessionSettings(session_config={"session.load_model_format": "ONNX",
                                         "session.intra_op.allow_spinning": "0",
                                         "session.set_denormal_as_zero": "1"})  # fmt: skip
    session, _ = load_session(tiny_model, ok)
    assert session.get_inputs()[0].name == "x"
    with pytest.raises(UsageError, match=r"session config entry session\.load_model_format"):
        load_session(
            tiny_model, SessionSettings(session_config={"session.load_model_format": "ORT"})
        )


def test_a_flag_entry_ort_would_misread_is_refused(tiny_model: Path) -> None:
    """ORT 1.x loads allow_spinning=maybe without a word and reads it as off."""
    maybe = SessionSettings(session_config={"session.intra_op.allow_spinning": "maybe"})
    with pytest.raises(UsageError, match=r"allow_spinning='maybe'.*1 \(on\)") as caught:
        load_session(tiny_model, maybe)
    assert "allow_spinning=0" in (caught.value.hint or "")


def test_unknown_cpu_provider_option_is_refused_naming_it(tiny_model: Path) -> None:
    bogus = SessionSettings(providers=({"name": CPU, "options": {"no_such_option": "1"}},))
    with pytest.raises(UsageError, match=r"CPUExecutionProvider option no_such_option") as caught:
        load_session(tiny_model, bogus)
    assert "no_such_option" in (caught.value.hint or "")


def test_a_missing_provider_of_a_list_is_named(tiny_model: Path) -> None:
    listed = SessionSettings(providers=({"name": "NopeExecutionProvider", "options": {}},
                                        {"name": CPU, "options": {}}))  # fmt: skip
    with pytest.raises(ProviderError, match="NopeExecutionProvider"):
        load_session(tiny_model, listed)


def test_the_result_records_the_session_config(tiny_model: Path) -> None:
    settings = settings_from_dict({
        "session_config": {"session.intra_op.allow_spinning": "0"}, "threads": 1,
        "min_iterations": 60, "min_seconds": 0, "warmup_runs": 2, "warmup_seconds": 0,
        "power": False,
    })  # fmt: skip
    doc = measure(tiny_model, settings).document
    assert doc["settings"]["session_config"] == {"session.intra_op.allow_spinning": "0"}
    assert doc["settings"]["providers"] is None and doc["settings"]["provider"] == CPU


def test_bench_help_lists_the_new_flags_in_their_groups(agent_cli: Runner) -> None:
    out = agent_cli("bench", "--help").stdout
    session = out.split("session:")[1].split("measurement:")[0]
    assert "--provider NAME[:KEY=VALUE,...]" in session and "--session-config KEY=VALUE" in session
    throughput = out.split("throughput:")[1].split("separate passes")[0]
    assert "--concurrency N" in throughput and "--sessions N" in throughput
    cold = out.split("cold starts")[1].split("power:")[0]
    assert "--cold-runs K" in cold and "--drop-caches" in cold


def test_bench_refuses_a_bad_option_in_one_line(agent_cli: Runner, tiny_model: Path) -> None:
    proc = agent_cli("bench", tiny_model, *FAST, "--no-power",
                     "--session-config", "session.load_model_format=ORT")  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "session.load_model_format" in proc.stderr and "Traceback" not in proc.stderr
