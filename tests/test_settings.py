"""The job-settings table (shared.settings): both sides derive their keys, flags and rules from it.

Why: a range rule written twice drifts (the campaign refused ``max_cv = 0`` while the agent
took it); with one table the campaign loader refuses exactly what an agent would refuse, and
the agent's dataclasses, flags and wire form cannot gain a setting the table lacks.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from agent.engine.measure import MeasureSettings
from agent.engine.options import add_measure_flags, settings_from_args, settings_from_dict
from collector.campaign import load_campaign
from shared.errors import UsageError
from shared.settings import BY_NAME, MEASURE_KEYS, SETTING_KEYS, SETTINGS, Rule, parse_job_settings
from tests.test_campaign_config import SMALLEST, write


def test_the_agent_defaults_are_the_table_defaults() -> None:
    defaults = MeasureSettings().as_dict()
    assert set(defaults) == SETTING_KEYS
    expected = {s.name: s.default for s in SETTINGS if s.name in SETTING_KEYS}
    assert defaults == {**expected, "input_shapes": {}, "input_values": {}}


def test_wire_form_round_trips() -> None:
    raw = {**MeasureSettings().as_dict(), "min_iterations": 7, "max_cv": 0.3, "power": False}
    raw["input_shapes"] = {"x": [1, 3]}
    assert settings_from_dict(raw).as_dict() == raw
    assert settings_from_dict(raw).input_shapes == {"x": (1, 3)}


def test_flags_give_the_table_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_measure_flags(parser)
    args = parser.parse_args([])
    assert settings_from_args(args, {}).as_dict() == MeasureSettings().as_dict()
    args = parser.parse_args(["--warmup", "3", "--max-foreign-cpu", "1.5", "--no-power"])
    got = settings_from_args(args, {"x": (2,)})
    assert (got.warmup_runs, got.limits.max_foreign_cpu_cores, got.power) == (3, 1.5, False)
    assert got.input_shapes == {"x": (2,)}


def test_unknown_and_mistyped_settings_keep_their_messages() -> None:
    with pytest.raises(UsageError, match=r"unknown measurement setting.*: speed") as caught:
        parse_job_settings({"speed": 1})
    assert "min_iterations" in (caught.value.hint or "")
    with pytest.raises(UsageError, match="bad measurement setting"):
        parse_job_settings({"min_seconds": "fast"})


def test_rule_texts() -> None:
    assert Rule(low=1).problem(0) == "must be >= 1, got 0"
    assert Rule(low=0.0, strict=True).problem(0.0) == "must be > 0, got 0.0"
    assert Rule(low=0.0, strict=True, high=1.0).problem(1.0) == "must be below 1, got 1.0"
    assert Rule(choices=("a", "b")).problem("c") == "must be one of a, b, got 'c'"
    assert Rule(low=0.0, strict=True, high=1.0).text() == "> 0 and below 1"
    assert Rule(low=1).problem(1) is None


# [measure] key -> (a value both sides refuse, what the agent calls it). max_cv and
# max_foreign_cpu_cores were checked by the campaign only; the agent now applies the same rule.
REFUSED: dict[str, tuple[Any, str]] = {
    "min_iterations": (0, "--min-iterations must be >= 1"),
    "warmup_runs": (-1, "--warmup must be >= 0"),
    "warmup_seconds": (-0.5, "--warmup-seconds must be >= 0"),
    "min_seconds": (-1.0, "--min-seconds must be >= 0"),
    "max_seconds": (0.0, "--max-seconds must be > 0"),
    "sample_interval_ms": (0.0, "--sample-interval-ms must be > 0"),
    "max_cv": (0.0, "--max-cv must be > 0"),
    "max_foreign_cpu_cores": (-0.25, "--max-foreign-cpu must be >= 0"),
    "target_ci": (1.0, "--target-ci must be a fraction between 0 and 1, e.g. 0.01"),
    "cold_runs": (-1, "--cold-runs must be >= 0"),
}


def test_every_ruled_measure_key_has_a_refused_case() -> None:
    ruled = {k for k in MEASURE_KEYS if BY_NAME[k].rule is not None and k != "repeats"}
    assert ruled == set(REFUSED)


@pytest.mark.parametrize("key", sorted(REFUSED))
def test_campaign_and_agent_refuse_the_same_values(tmp_path: Path, key: str) -> None:
    value, agent_message = REFUSED[key]
    lines = [row for row in SMALLEST.splitlines() if not row.startswith(f"{key} =")]
    with pytest.raises(UsageError, match=rf"measure\.{key}: must be") as caught:
        load_campaign(write(tmp_path, "\n".join([*lines, f"{key} = {value!r}\n"])))
    assert caught.value.hint
    with pytest.raises(UsageError) as refused:
        settings_from_dict({key: value})
    assert agent_message in refused.value.message


@pytest.mark.parametrize(("key", "value"), [("threads", -1), ("inter_threads", -2)])
def test_matrix_and_agent_refuse_negative_threads(tmp_path: Path, key: str, value: int) -> None:
    text = SMALLEST.replace("threads = [1, 2]", f"{key} = [{value}]")
    with pytest.raises(UsageError, match=rf"matrix\.{key}\[0\]: must be >= 0"):
        load_campaign(write(tmp_path, text))
    with pytest.raises(UsageError, match=f"--{key.replace('_', '-')} must be >= 0"):
        settings_from_dict({key: value})


def test_agent_refuses_an_unknown_opt_level_before_loading() -> None:
    with pytest.raises(UsageError, match="--opt-level must be one of disable, basic"):
        settings_from_dict({"opt_level": "ALL"})


def test_several_problems_are_reported_at_once() -> None:
    with pytest.raises(UsageError) as caught:
        settings_from_dict({"min_iterations": 0, "power_rate_hz": 0})
    assert caught.value.message == "--min-iterations must be >= 1; --power-rate-hz must be > 0"
