"""Job (measurement) settings: one table, read by both sides.

Why one table: the same setting is a flag of ``flopgap-agent bench`` (``--min-seconds``), a key
of a campaign's ``[measure]`` or ``[matrix]`` table, a key of a job's settings on the wire and of
a result document's ``settings``. Each entry says once what the setting is called, its type,
default and allowed range, its help text and flag, and which side uses it; the agent's flags,
its job-settings parser and the campaign's checks are all built from ``SETTINGS``, so a range
rule cannot differ between the side that writes a job and the side that runs it.

Values are in wire units: seconds, milliseconds (``sample_interval_ms``), hertz, fractions and
CPU cores. Standard library and numpy (``input_values`` is read by ``shared.input_values``)
only, so the collector reads it without loading onnxruntime.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shared import session_specs
from shared.errors import UsageError
from shared.input_values import values_from_wire

Side = Literal["agent", "collector", "both"]
"""Who reads a setting: the agent measures with it, the collector writes or keeps it."""

ORT_LEVEL_NAMES: dict[str, str] = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
"""Each level's ``onnxruntime.GraphOptimizationLevel`` member, by name: the agent's sessions and
the collector's copy of the graph a board runs (``collector.predict.optimize``) must mean the
same level by the same word; plain strings, since this module must not load onnxruntime."""

OPT_LEVELS: tuple[str, ...] = tuple(ORT_LEVEL_NAMES)
"""onnxruntime's graph optimisation levels, by the names users write, weakest first."""

GROUPS = (
    "session",
    "measurement",
    "throughput",
    "separate passes after the timed runs",
    "cold starts (a separate pass: fresh processes)",
    "power",
)
"""The argparse groups of the agent's measurement flags, in the order `--help` shows them."""


@dataclass(frozen=True)
class Rule:
    """What values a setting allows: ``>= low`` (``> low`` when ``strict``), below ``high``,
    or one of ``choices``. ``words`` and ``hint`` replace the generated texts when set."""

    low: float | None = None
    strict: bool = False
    high: float | None = None
    choices: tuple[str, ...] = ()
    words: str | None = None
    hint: str | None = None

    def text(self) -> str:
        """The rule in words, e.g. ``>= 1``, ``> 0 and below 1``, ``one of a, b``."""
        if self.words is not None:
            return self.words
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.strict else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"below {self.high:g}")
        return " and ".join(parts)

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` (``must be >= 1, got 0``), or None when it is allowed."""
        if self.choices:
            if value in self.choices:
                return None
            return f"must be one of {', '.join(self.choices)}, got {value!r}"
        if self.low is not None and (value < self.low or (self.strict and value == self.low)):
            return f"must be {'>' if self.strict else '>='} {self.low:g}, got {value}"
        if self.high is not None and value >= self.high:
            return f"must be below {self.high:g}, got {value}"
        return None

    def advice(self) -> str:
        """What to write instead, for an error's hint."""
        return self.hint or f"use a value {self.text()}"


COUNT = Rule(low=0)
POSITIVE_COUNT = Rule(low=1)
AMOUNT = Rule(low=0.0)
POSITIVE = Rule(low=0.0, strict=True)


@dataclass(frozen=True)
class Setting:
    """One job setting. ``flag`` is its `bench` flag (None: no flag), ``campaign`` the campaign
    table that sets it (``measure``, ``matrix`` or None); ``help`` may name ``{default}``."""

    name: str
    type: type
    default: Any
    rule: Rule | None
    help: str | None
    group: str | None
    side: Side
    flag: str | None = None
    metavar: str | None = None
    campaign: str | None = None
    parse: Callable[[str], Any] | None = None
    """Set for a flag that may repeat: it parses one occurrence (the flag's value is a list)."""

    def help_text(self) -> str | None:
        """The help with ``{default}`` filled in (as ``%g``: 2.0 shows as 2)."""
        if self.help is None or "{default}" not in self.help:
            return self.help
        return self.help.replace("{default}", f"{self.default:g}")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting("threads", int, 0, COUNT, "intra-op threads (0: ORT default)", "session", "both",
            _flag("threads"), campaign="matrix"),
    Setting("inter_threads", int, 0, COUNT, "inter-op threads (0: default)", "session", "both",
            _flag("inter_threads"), campaign="matrix"),
    Setting("provider", str, "CPUExecutionProvider", None, None, "session", "both",
            campaign="matrix"),
    Setting("providers", list, None, None,
            "execution provider, with ORT provider options; repeat for an ordered list of "
            "providers to try (default CPUExecutionProvider)", "session", "both", "--provider",
            metavar="NAME[:KEY=VALUE,...]", campaign="measure",
            parse=session_specs.parse_provider_flag),
    Setting("session_config", dict, {}, None,
            "an ORT session config entry (SessionOptions.add_session_config_entry), e.g. "
            "session.intra_op.allow_spinning=0; repeats", "session", "both",
            _flag("session_config"), metavar="KEY=VALUE", campaign="measure",
            parse=session_specs.parse_config_flag),
    Setting("opt_level", str, "all", Rule(choices=OPT_LEVELS),
            "graph optimisation level (default: all)", "session", "both", _flag("opt_level"),
            campaign="matrix"),
    Setting("warmup_runs", int, 10, COUNT,
            "warm-up runs (default {default}, and at least --warmup-seconds)", "measurement",
            "both", "--warmup", metavar="N", campaign="measure"),
    Setting("warmup_seconds", float, 0.5, AMOUNT, None, "measurement", "both",
            _flag("warmup_seconds"), campaign="measure"),
    Setting("min_iterations", int, 64, POSITIVE_COUNT,
            "steady-state runs at least (default {default})", "measurement", "both",
            _flag("min_iterations"), campaign="measure"),
    Setting("min_seconds", float, 2.0, AMOUNT,
            "steady-state seconds at least (default {default})", "measurement", "both",
            _flag("min_seconds"), campaign="measure"),
    Setting("max_seconds", float, 60.0, POSITIVE,
            "steady-state cap in seconds (default {default})", "measurement", "both",
            _flag("max_seconds"), campaign="measure"),
    Setting("target_ci", float, None,
            Rule(low=0.0, strict=True, high=1.0,
                 words="a fraction between 0 and 1, e.g. 0.01",
                 hint="use a fraction such as 0.02"),
            "adaptive stopping: after --min-iterations, stop once the 95%% CI of "
            "the median is within +-FRACTION of it (e.g. 0.01), or at --max-seconds",
            "measurement", "both", _flag("target_ci"), metavar="FRACTION", campaign="measure"),
    Setting("seed", int, 0, COUNT, "seed of the synthesized inputs", "measurement", "both",
            _flag("seed")),
    Setting("sample_interval_ms", float, 10.0, POSITIVE, "memory sampling period (default 10 ms)",
            "measurement", "both", _flag("sample_interval_ms"), campaign="measure"),
    Setting("max_cv", float, 0.10, POSITIVE,
            "coefficient of variation above which a result is invalid", "measurement", "both",
            _flag("max_cv"), campaign="measure"),
    Setting("max_foreign_cpu_cores", float, 0.25, AMOUNT,
            "CPU cores other processes may use before a result is invalid", "measurement",
            "both", "--max-foreign-cpu", campaign="measure"),
    Setting("concurrency", int, 1, POSITIVE_COUNT,
            "N threads call run at once, each timing its own requests; the latency figures "
            "are per request, beside inferences/s (default {default})", "throughput", "both",
            _flag("concurrency"), metavar="N", campaign="matrix"),
    Setting("sessions", int, 1, POSITIVE_COUNT,
            "sessions the --concurrency threads share round-robin; = N gives one session per "
            "thread, at one more copy of the weights and arena each (default {default})",
            "throughput", "both", _flag("sessions"), metavar="N", campaign="matrix"),
    Setting("profile_ops", bool, False, None,
            "run ORT's per-op profiler in a separate pass (never in the statistics)",
            "separate passes after the timed runs", "both", _flag("profile_ops"),
            campaign="measure"),
    Setting("calibrate", bool, False, None,
            "measure this device's peak GFLOP/s and memory bandwidth too",
            "separate passes after the timed runs", "both", _flag("calibrate")),
    Setting("cold_runs", int, 0, COUNT,
            "K fresh processes each load the model and run it once: the distribution of load "
            "and first-inference times (default {default}: none)",
            "cold starts (a separate pass: fresh processes)", "both", _flag("cold_runs"),
            metavar="K", campaign="measure"),
    Setting("drop_caches", bool, False, None,
            "drop the OS page cache before each cold run (needs root: writes "
            "/proc/sys/vm/drop_caches; a refusal is stated in the result)",
            "cold starts (a separate pass: fresh processes)", "both", _flag("drop_caches"),
            campaign="measure"),
    Setting("power", bool, True, None, "do not sample power even where the board has a sensor",
            "power", "agent", "--no-power"),
    Setting("power_rate_hz", float, 100.0, POSITIVE,
            "power sampling rate, capped by the sensor's own (default {default})", "power",
            "agent", _flag("power_rate_hz")),
    Setting("idle_seconds", float, 1.0, AMOUNT,
            "idle baseline window before the model loads (default {default})", "power", "agent",
            _flag("idle_seconds")),
    Setting("input_shapes", dict, None, None, None, None, "both"),
    Setting("input_values", dict, None, None, None, None, "both"),
    Setting("repeats", int, 1, POSITIVE_COUNT, None, None, "collector", campaign="measure"),
)  # fmt: skip

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}

SETTING_KEYS: frozenset[str] = frozenset(s.name for s in SETTINGS if s.side != "collector")
"""The keys of a job's settings: what the agent accepts on the wire."""

MEASURE_KEYS: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.campaign == "measure")
"""The keys of a campaign's ``[measure]`` table."""


def add_flags(parser: argparse.ArgumentParser) -> dict[str, argparse._ArgumentGroup]:
    """Every setting's flag on `parser`, in GROUPS; returns the groups by title.

    Each flag's dest is the setting's name, so ``vars(args)`` holds job-setting keys.
    """
    groups = {title: parser.add_argument_group(title) for title in GROUPS}
    for s in SETTINGS:
        if s.flag is None or s.group is None:
            continue
        kwargs: dict[str, Any] = {"dest": s.name, "help": s.help_text()}
        if s.parse is not None:
            kwargs |= {"action": "append", "type": s.parse, "default": None,
                       "metavar": s.metavar}  # fmt: skip
        elif s.type is bool:
            kwargs["action"] = "store_false" if s.default else "store_true"
        else:
            kwargs["default"] = s.default
            kwargs["metavar"] = s.metavar or s.flag[2:].replace("-", "_").upper()
            if s.rule is not None and s.rule.choices:
                kwargs["choices"] = list(s.rule.choices)
                kwargs["metavar"] = None
            elif s.type is not str:
                kwargs["type"] = s.type
        groups[s.group].add_argument(s.flag, **kwargs)
    return groups


def _convert(s: Setting, value: Any) -> Any:
    if s.name == "input_values":  # input name -> InputValue, from shared.input_values' wire form
        if value is not None and not isinstance(value, Mapping):
            raise UsageError(f"input_values is {type(value).__name__}, not a table of inputs")
        return values_from_wire(value)
    if s.name == "providers":
        return session_specs.providers_from_wire(value)
    if s.name == "session_config":
        return session_specs.config_from_wire(value)
    if s.type is dict:  # input_shapes: input name -> elements per axis
        return {str(k): tuple(int(x) for x in v) for k, v in dict(value or {}).items()}
    if value is None and s.default is None:
        return None
    return s.type(value)


def parse_job_settings(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Every job setting, typed, from a job's settings (defaults for what `raw` leaves out).

    Unknown keys, values of the wrong type and values outside a setting's rule are refused
    with one UsageError; the agent's ``settings_from_dict`` and the campaign loader both call
    this, so a campaign is refused at load for exactly what its agents would refuse.
    """
    unknown = sorted(set(raw) - SETTING_KEYS)
    if unknown:
        raise UsageError(
            f"unknown measurement setting(s): {', '.join(unknown)}",
            hint=f"known settings: {', '.join(sorted(SETTING_KEYS))}",
        )
    values: dict[str, Any] = {}
    try:
        for s in SETTINGS:
            if s.side != "collector":
                values[s.name] = _convert(s, raw.get(s.name, s.default))
        values["provider"], values["providers"] = session_specs.simplest(
            values["provider"], values["providers"]
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(f"bad measurement setting: {exc}") from exc
    problems = [
        f"{s.flag or s.name} must be {s.rule.text()}"
        for s in SETTINGS
        if s.rule is not None and values.get(s.name) is not None and s.rule.problem(values[s.name])
    ]
    if problems:
        raise UsageError("; ".join(problems))
    if values["sessions"] > values["concurrency"]:
        raise UsageError(
            f"--sessions {values['sessions']} is more than --concurrency {values['concurrency']}",
            hint="give each session at least one thread: --sessions at most --concurrency",
        )
    return values
