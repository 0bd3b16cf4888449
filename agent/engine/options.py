"""Measurement options: one set of flags for `bench`, one dict form for jobs on the wire.

The same keys appear as CLI flags (`--min-seconds`), in job settings from the collector
(`min_seconds`) and in the result document's `settings`, so a result says exactly how it was
measured and a job can be replayed locally with `bench`. The keys, flags, defaults and range
rules are the table in shared.settings; this module turns them into a MeasureSettings.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from agent.engine.measure import MeasureSettings
from agent.engine.session import SessionSettings
from agent.engine.timing import StopRule
from agent.engine.verdict import Limits
from shared import settings as table
from shared.input_values import InputValue
from shared.settings import SETTING_KEYS

__all__ = ["SETTING_KEYS", "add_measure_flags", "settings_from_args", "settings_from_dict"]


def add_measure_flags(parser: argparse.ArgumentParser) -> None:
    """The flags shared by every command that measures (one per shared.settings entry)."""
    groups = table.add_flags(parser)
    groups["power"].add_argument(
        "--sysfs-root",
        default=None,
        metavar="DIR",
        help="read sysfs/procfs under DIR (a captured board tree); default "
        "$FLOPGAP_SYSFS_ROOT or /",
    )


def settings_from_args(
    args: argparse.Namespace,
    shapes: Mapping[str, tuple[int, ...]],
    values: Mapping[str, InputValue] | None = None,
) -> MeasureSettings:
    """MeasureSettings from parsed flags (each flag's dest is its setting's name) and the
    ``--input-value``/``--input-file`` values (already parsed: a local file is not re-encoded)."""
    raw = {key: value for key, value in vars(args).items() if key in SETTING_KEYS}
    raw["session_config"] = dict(raw.get("session_config") or [])  # repeated key=value pairs
    raw["input_shapes"] = {k: list(v) for k, v in shapes.items()}
    raw.pop("input_values", None)
    settings = settings_from_dict(raw, root=args.sysfs_root)
    return dataclasses.replace(settings, input_values=dict(values or {}))


def settings_from_dict(raw: Mapping[str, Any], root: str | None = None) -> MeasureSettings:
    """MeasureSettings from a job's settings; unknown keys and bad values are refused."""
    values = table.parse_job_settings(raw)

    def part(cls: Any) -> Any:
        return cls(**{f.name: values.pop(f.name) for f in fields(cls)})

    session, stop, limits = part(SessionSettings), part(StopRule), part(Limits)
    sample_interval_s = values.pop("sample_interval_ms") / 1000
    return MeasureSettings(
        session=session,
        stop=stop,
        limits=limits,
        sample_interval_s=sample_interval_s,
        root=root or MeasureSettings().root,
        **values,
    )
