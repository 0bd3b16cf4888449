"""``[measure]``: how each job measures, passed to the agent as job settings.

Why here and not in the matrix: these values describe the measurement method, which must stay
the same across a campaign so that its results compare. Each key is a job setting of
``shared.settings.SETTINGS`` (its type and range rule come from there, the same rule the agent
applies), except ``repeats``, ``target_ci`` and ``profile_ops``, which the collector keeps on
the spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.campaign.tables import Table
from shared import session_specs
from shared.errors import UsageError
from shared.settings import BY_NAME, MEASURE_KEYS, Setting

_ON_SPEC = ("repeats", "target_ci", "profile_ops")


@dataclass(frozen=True)
class Measure:
    """The ``[measure]`` table: the job settings written there, and the collector's own keys."""

    settings: dict[str, Any]
    repeats: int = 1
    target_ci: float | None = None
    profile_ops: bool = False


def read_setting(table: Table, setting: Setting) -> int | float | None:
    """The number ``table`` gives ``setting`` (None when absent), checked by the setting's rule."""
    value = table.get(setting.name, "an integer" if setting.type is int else "a number")
    if value is None:
        return None
    problem = setting.rule.problem(value) if setting.rule is not None else None
    if problem and setting.rule is not None:
        raise table.error(setting.name, problem, setting.rule.advice())
    return int(value) if setting.type is int else float(value)


def _read(table: Table, setting: Setting) -> Any:
    """A ``[measure]`` value of any setting type: numbers by their rule, a flag, a provider
    list (``providers = [{name = "...", options = {...}}]``) or a table of config entries."""
    if setting.type is bool:
        return table.get(setting.name, "true or false")
    if setting.type not in (list, dict):
        return read_setting(table, setting)
    if setting.name not in table.raw:
        return None
    parse = (
        session_specs.providers_from_wire
        if setting.type is list
        else session_specs.config_from_wire
    )
    try:
        return parse(table.raw[setting.name])
    except UsageError as exc:
        raise table.error(setting.name, exc.message, exc.hint or "see the README") from exc


def read_measure(top: Table) -> Measure:
    """The ``[measure]`` table (optional: the agent's defaults apply to what is not written)."""
    table = top.table("measure", MEASURE_KEYS)
    settings: dict[str, Any] = {}
    for key in MEASURE_KEYS:
        value = None if key in _ON_SPEC else _read(table, BY_NAME[key])
        if value is not None:
            settings[key] = value
    if settings.get("min_seconds", 0.0) > settings.get("max_seconds", float("inf")):
        raise table.error(
            "min_seconds", "is above measure.max_seconds", "raise max_seconds or lower min_seconds"
        )
    target_ci = read_setting(table, BY_NAME["target_ci"])
    repeats = read_setting(table, BY_NAME["repeats"])
    return Measure(
        settings=settings,
        repeats=int(repeats or 1),
        target_ci=target_ci,
        profile_ops=bool(table.get("profile_ops", "true or false", False)),
    )
