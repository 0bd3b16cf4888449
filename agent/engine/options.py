"""Measurement options: one set of flags for `bench`, one dict form for jobs on the wire.

The same keys appear as CLI flags (`--min-seconds`), in job settings from the collector
(`min_seconds`) and in the result document's `settings`, so a result says exactly how it was
measured and a job can be replayed locally with `bench`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from agent.engine.measure import MeasureSettings
from agent.engine.session import OPT_LEVELS, SessionSettings
from agent.engine.timing import StopRule
from agent.engine.verdict import Limits
from shared.errors import UsageError

SETTING_KEYS = {
    "provider", "threads", "inter_threads", "opt_level", "input_shapes", "seed",
    "warmup_runs", "warmup_seconds", "min_iterations", "min_seconds", "max_seconds",
    "sample_interval_ms", "max_cv", "max_foreign_cpu_cores", "power", "power_rate_hz",
    "idle_seconds", "profile_ops", "calibrate", "target_ci",
}  # fmt: skip


def add_measure_flags(parser: argparse.ArgumentParser) -> None:
    """The flags shared by every command that measures."""
    d = MeasureSettings()
    g = parser.add_argument_group("session")
    g.add_argument("--threads", type=int, default=0, help="intra-op threads (0: ORT default)")
    g.add_argument("--inter-threads", type=int, default=0, help="inter-op threads (0: default)")
    g.add_argument("--provider", default="CPUExecutionProvider", help="execution provider")
    g.add_argument(
        "--opt-level",
        choices=list(OPT_LEVELS),
        default="all",
        help="graph optimisation level (default: all)",
    )
    g = parser.add_argument_group("measurement")
    g.add_argument(
        "--warmup",
        type=int,
        default=d.warmup_runs,
        metavar="N",
        help=f"warm-up runs (default {d.warmup_runs}, and at least --warmup-seconds)",
    )
    g.add_argument("--warmup-seconds", type=float, default=d.warmup_seconds)
    g.add_argument(
        "--min-iterations",
        type=int,
        default=d.stop.min_iterations,
        help=f"steady-state runs at least (default {d.stop.min_iterations})",
    )
    g.add_argument(
        "--min-seconds",
        type=float,
        default=d.stop.min_seconds,
        help=f"steady-state seconds at least (default {d.stop.min_seconds:g})",
    )
    g.add_argument(
        "--max-seconds",
        type=float,
        default=d.stop.max_seconds,
        help=f"steady-state cap in seconds (default {d.stop.max_seconds:g})",
    )
    g.add_argument(
        "--target-ci",
        type=float,
        metavar="FRACTION",
        help="adaptive stopping: after --min-iterations, stop once the 95%% CI of "
        "the median is within +-FRACTION of it (e.g. 0.01), or at --max-seconds",
    )
    g.add_argument("--seed", type=int, default=0, help="seed of the synthesized inputs")
    g.add_argument(
        "--sample-interval-ms",
        type=float,
        default=d.sample_interval_s * 1000,
        help="memory sampling period (default 10 ms)",
    )
    g.add_argument(
        "--max-cv",
        type=float,
        default=d.limits.max_cv,
        help="coefficient of variation above which a result is invalid",
    )
    g.add_argument(
        "--max-foreign-cpu",
        type=float,
        default=d.limits.max_foreign_cpu_cores,
        help="CPU cores other processes may use before a result is invalid",
    )
    g = parser.add_argument_group("separate passes after the timed runs")
    g.add_argument(
        "--profile-ops",
        action="store_true",
        help="run ORT's per-op profiler in a separate pass (never in the statistics)",
    )
    g.add_argument(
        "--calibrate",
        action="store_true",
        help="measure this device's peak GFLOP/s and memory bandwidth too",
    )
    g = parser.add_argument_group("power")
    g.add_argument(
        "--no-power",
        dest="power",
        action="store_false",
        help="do not sample power even where the board has a sensor",
    )
    g.add_argument(
        "--power-rate-hz",
        type=float,
        default=d.power_rate_hz,
        help="power sampling rate, capped by the sensor's own (default 100)",
    )
    g.add_argument(
        "--idle-seconds",
        type=float,
        default=d.idle_seconds,
        help="idle baseline window before the model loads (default 1)",
    )
    g.add_argument(
        "--sysfs-root",
        default=None,
        metavar="DIR",
        help="read sysfs/procfs under DIR (a captured board tree); default "
        "$FLOPGAP_SYSFS_ROOT or /",
    )


def settings_from_args(
    args: argparse.Namespace, shapes: Mapping[str, tuple[int, ...]]
) -> MeasureSettings:
    """MeasureSettings from parsed flags."""
    return settings_from_dict(
        {
            "provider": args.provider,
            "threads": args.threads,
            "inter_threads": args.inter_threads,
            "opt_level": args.opt_level,
            "input_shapes": {k: list(v) for k, v in shapes.items()},
            "seed": args.seed,
            "warmup_runs": args.warmup,
            "warmup_seconds": args.warmup_seconds,
            "min_iterations": args.min_iterations,
            "min_seconds": args.min_seconds,
            "max_seconds": args.max_seconds,
            "sample_interval_ms": args.sample_interval_ms,
            "max_cv": args.max_cv,
            "max_foreign_cpu_cores": args.max_foreign_cpu,
            "power": args.power,
            "power_rate_hz": args.power_rate_hz,
            "idle_seconds": args.idle_seconds,
            "profile_ops": args.profile_ops,
            "target_ci": args.target_ci,
            "calibrate": args.calibrate,
        },
        root=args.sysfs_root,
    )


def settings_from_dict(raw: Mapping[str, Any], root: str | None = None) -> MeasureSettings:
    """MeasureSettings from a job's settings; unknown keys and bad values are refused."""
    unknown = sorted(set(raw) - SETTING_KEYS)
    if unknown:
        raise UsageError(
            f"unknown measurement setting(s): {', '.join(unknown)}",
            hint=f"known settings: {', '.join(sorted(SETTING_KEYS))}",
        )
    d = MeasureSettings()
    get = raw.get
    try:
        settings = MeasureSettings(
            session=SessionSettings(
                provider=str(get("provider", d.session.provider)),
                threads=int(get("threads", d.session.threads)),
                inter_threads=int(get("inter_threads", d.session.inter_threads)),
                opt_level=str(get("opt_level", d.session.opt_level)),
            ),
            input_shapes={
                str(k): tuple(int(x) for x in v) for k, v in dict(get("input_shapes", {})).items()
            },
            seed=int(get("seed", d.seed)),
            warmup_runs=int(get("warmup_runs", d.warmup_runs)),
            warmup_seconds=float(get("warmup_seconds", d.warmup_seconds)),
            stop=StopRule(
                min_iterations=int(get("min_iterations", d.stop.min_iterations)),
                min_seconds=float(get("min_seconds", d.stop.min_seconds)),
                max_seconds=float(get("max_seconds", d.stop.max_seconds)),
                target_ci=_optional_float(get("target_ci")),
            ),
            sample_interval_s=float(get("sample_interval_ms", d.sample_interval_s * 1000)) / 1000,
            limits=Limits(
                max_cv=float(get("max_cv", d.limits.max_cv)),
                max_foreign_cpu_cores=float(
                    get("max_foreign_cpu_cores", d.limits.max_foreign_cpu_cores)
                ),
            ),
            power=bool(get("power", d.power)),
            power_rate_hz=float(get("power_rate_hz", d.power_rate_hz)),
            idle_seconds=float(get("idle_seconds", d.idle_seconds)),
            profile_ops=bool(get("profile_ops", d.profile_ops)),
            calibrate=bool(get("calibrate", d.calibrate)),
            root=root or d.root,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(f"bad measurement setting: {exc}") from exc
    _check_ranges(settings)
    return settings


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _check_ranges(s: MeasureSettings) -> None:
    problems = []
    if s.warmup_runs < 0 or s.warmup_seconds < 0:
        problems.append("warm-up must be >= 0")
    if s.stop.min_iterations < 1:
        problems.append("--min-iterations must be >= 1")
    if s.stop.min_seconds < 0 or s.stop.max_seconds <= 0:
        problems.append("--min-seconds must be >= 0 and --max-seconds > 0")
    if s.power_rate_hz <= 0 or s.idle_seconds < 0:
        problems.append("--power-rate-hz must be > 0 and --idle-seconds >= 0")
    if s.stop.target_ci is not None and not 0 < s.stop.target_ci < 1:
        problems.append("--target-ci must be a fraction between 0 and 1, e.g. 0.01")
    if s.sample_interval_s <= 0:
        problems.append("--sample-interval-ms must be > 0")
    if problems:
        raise UsageError("; ".join(problems))
