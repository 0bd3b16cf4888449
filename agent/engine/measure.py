"""One measurement of one model: load, first inference, warm-up, steady state, verdict.

This is the engine `flopgap-agent bench` and the fleet runner both use. It returns the
versioned result document (shared.result) and the raw steady-state latencies in ns.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import psutil

from agent import inputs
from agent.engine import concurrent, cpu_window, document, timing
from agent.engine.sampler import Sampler, SamplerReport
from agent.engine.session import SessionSettings, describe_ort_error, load_session
from agent.engine.verdict import Limits
from agent.power.meter import PowerSampler, open_sampler
from agent.probes import cpufreq, memory
from shared.errors import MeasurementError
from shared.hashing import file_sha256
from shared.input_values import InputValue, values_to_wire
from shared.settings import SETTINGS

SETTING_ORDER = tuple(s.name for s in SETTINGS if s.side != "collector")


def default_root() -> str:
    """Where sysfs/procfs are read: FLOPGAP_SYSFS_ROOT (a replayed board tree) or "/"."""
    return os.environ.get("FLOPGAP_SYSFS_ROOT", "/")


@dataclass(frozen=True)
class MeasureSettings:
    """Everything that decides how a model is measured."""

    session: SessionSettings = field(default_factory=SessionSettings)
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    input_values: Mapping[str, InputValue] = field(default_factory=dict)
    seed: int = 0
    warmup_runs: int = 10
    warmup_seconds: float = 0.5
    stop: timing.StopRule = field(default_factory=timing.StopRule)
    sample_interval_s: float = 0.01
    limits: Limits = field(default_factory=Limits)
    power: bool = True
    power_rate_hz: float = 100.0
    idle_seconds: float = 1.0
    concurrency: int = 1
    sessions: int = 1
    profile_ops: bool = False
    calibrate: bool = False
    cold_runs: int = 0
    drop_caches: bool = False
    root: str = field(default_factory=default_root)

    def as_dict(self, wire_values: bool = True) -> dict[str, Any]:
        """The job settings this measures under, keyed and ordered as shared.settings.SETTINGS
        (wire units: sample_interval_ms, input shapes as lists). Input values are in their wire
        form, or, without ``wire_values``, as a result document describes them (a file by name
        and sha256, not its bytes again)."""
        flat: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            nested = is_dataclass(value) and not isinstance(value, type)
            flat.update(asdict(value) if nested else {f.name: value})
        flat["sample_interval_ms"] = self.sample_interval_s * 1000.0
        flat["input_shapes"] = {k: list(v) for k, v in self.input_shapes.items()}
        flat["input_values"] = (
            values_to_wire(self.input_values)
            if wire_values
            else {name: value.describe() for name, value in self.input_values.items()}
        )
        return {key: flat[key] for key in SETTING_ORDER}


@dataclass(frozen=True)
class Measurement:
    """The result document and the raw steady-state latencies (ns)."""

    document: dict[str, Any]
    latencies_ns: np.ndarray


def _runner(session: ort.InferenceSession, feeds: inputs.Feeds) -> tuple[Any, Any, Any]:
    """(run, output_names, feeds) for the call this model allows.

    `session.run` is what users call; types numpy cannot hold (bfloat16, float8) need
    `run_with_ort_values`, which takes OrtValue feeds and returns OrtValues.
    """
    if feeds.needs_ort_values:
        names = [o.name for o in session.get_outputs()]
        return session.run_with_ort_values, names, dict(feeds.arrays)
    return session.run, None, dict(feeds.arrays)


def measure(
    model_path: Path,
    settings: MeasureSettings,
    model_name: str | None = None,
    on_progress: timing.ProgressFn | None = None,
) -> Measurement:
    """Measure `model_path` under `settings`; raises ModelError, UsageError, MeasurementError."""
    model_path = Path(model_path)
    process = psutil.Process()
    hwm_reset = memory.reset_hwm()
    rss_before = memory.rss_mb(process)
    started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    power_sampler, power_reason = _open_power(settings)
    sampler = Sampler(settings.sample_interval_s, settings.root)
    sampler.start()
    power_result = None
    try:
        session, load_ns = load_session(model_path, settings.session)
        rss_after_load = memory.rss_mb(process)
        shapes, feeds = inputs.model_feeds(
            session.get_inputs(),
            session.get_outputs(),
            settings.input_shapes,
            settings.input_values,
            settings.seed,
        )
        run, outputs, feed_dict = _runner(session, feeds)
        extra = [
            load_session(model_path, settings.session)[0] for _ in range(settings.sessions - 1)
        ]
        rss_after_sessions = memory.rss_mb(process)
        runs = [run, *(_runner(other, feeds)[0] for other in extra)]
        phases = _timed_phases(runs, outputs, feed_dict, settings, sampler, on_progress, session)
        phases["throughput"]["extra_session_mb"] = (
            (rss_after_sessions - rss_after_load) / len(extra) if extra else None
        )
        if power_sampler is not None:
            steady = phases["steady"]
            power_result = power_sampler.window(
                steady.start_ns, steady.end_ns, int(steady.latencies_ns.size)
            )
    finally:
        report = sampler.stop()
        if power_sampler is not None:
            power_sampler.stop()
    hwm, hwm_method = memory.hwm_mb()
    phases["power"], phases["power_reason"] = power_result, power_reason
    doc = document.build(
        model_path,
        model_name,
        file_sha256(model_path),
        settings,
        session,
        shapes,
        load_ns,
        phases,
        report,
        {
            "rss_before_mb": rss_before,
            "rss_after_load_mb": rss_after_load,
            "peak_rss_mb": max(report.peak_rss_mb, rss_after_sessions),
            "hwm_mb": hwm,
            "method": _memory_method(report, hwm_method, hwm_reset),
        },
    )
    doc["started_at"] = started_at
    _extra_passes(doc, model_path, settings, shapes)
    return Measurement(doc, phases["steady"].latencies_ns)


def _extra_passes(
    doc: dict[str, Any],
    model_path: Path,
    settings: MeasureSettings,
    shapes: Mapping[str, tuple[int, ...]],
) -> None:
    """Separate passes after the timed runs, so their overhead never touches the statistics:
    ORT's per-op profiler (`op_profile`; the optimized graph ORT ran is kept in a folder the
    caller removes, named by `op_profile.optimized_model_file`) and device calibration."""
    if settings.profile_ops:
        from agent.engine.profile_ops import profile_ops

        work = Path(tempfile.mkdtemp(prefix="flopgap-profile-"))
        profile = profile_ops(
            model_path, settings.session, shapes, work, seed=settings.seed,
            values=settings.input_values,
        )  # fmt: skip
        doc["op_profile"] = profile.document
        doc["op_profile"]["optimized_model_file"] = str(profile.optimized_model)
        profile.profile_file.unlink(missing_ok=True)
    if settings.cold_runs:
        from agent.engine.cold_starts import cold_starts

        doc["cold_starts"] = cold_starts(model_path, settings)
    if settings.calibrate:
        from agent.engine.calibrate import calibrate

        doc["calibration"] = calibrate(
            settings.session.threads, limits=settings.limits, root=settings.root
        )


def _open_power(settings: MeasureSettings) -> tuple[PowerSampler | None, str | None]:
    """Start the board's power sampler and take the idle baseline, before the model loads."""
    if not settings.power:
        return None, "power sampling turned off for this measurement"
    sampler, reason = open_sampler(settings.root, rate_hz=settings.power_rate_hz)
    if sampler is not None:
        sampler.start()
        sampler.idle_baseline(settings.idle_seconds)
    return sampler, reason


def _timed_phases(
    runs: list[Any],
    outputs: Any,
    feeds: Any,
    settings: MeasureSettings,
    sampler: Sampler,
    on_progress: timing.ProgressFn | None,
    session: ort.InferenceSession,
) -> dict[str, Any]:
    """First inference, warm-up and steady state, with the window's counters at its edges.

    The sampler goes quiet for the steady window (agent.engine.sampler: at threads = cores
    its wakeups are what slowed ORT); its edge samples come before the start counters and
    after the end counters, so the counters bracket the window as tightly as possible.
    ``runs`` holds one run function per session; the first is the one timed cold.
    """
    cpu_dirs = cpufreq.cpu_dirs(settings.root)
    process = psutil.Process()
    run = runs[0]
    try:
        with timing.gc_paused():
            first_ns = timing.time_once(run, outputs, feeds)
            if on_progress is not None:
                on_progress("warmup", 0, 0, None)
            warm = timing.warm_up(
                run, outputs, feeds, settings.warmup_runs, settings.warmup_seconds
            )
            for other in runs[1:]:  # each further session once cold, then its warm-up runs
                timing.warm_up(other, outputs, feeds, settings.warmup_runs + 1, 0.0)
            sampler.quiet()
            try:
                throttle_before = cpufreq.throttle_count(cpu_dirs)
                cpu_start = cpu_window.snapshot(process)
                steady, starts, per_thread = concurrent.steady_window(
                    runs, outputs, feeds, settings.concurrency, settings.stop, on_progress
                )
                cpu_end = cpu_window.snapshot(process)
                throttle_after = cpufreq.throttle_count(cpu_dirs)
            finally:
                sampler.loud()
    except Exception as exc:  # ORT raises pybind errors with no common base
        why = describe_ort_error(exc)
        raise MeasurementError(
            f"inference failed: {why}",
            hint=inputs.inference_hint(why, session.get_inputs(), settings.input_values),
        ) from exc
    throttle = None
    if throttle_before is not None and throttle_after is not None:
        throttle = throttle_after - throttle_before
    return {
        "first_ns": first_ns,
        "warm": warm,
        "steady": steady,
        "cpu": cpu_window.between(cpu_start, cpu_end),
        "loadavg": (cpu_start.loadavg, cpu_end.loadavg),
        "throttle": throttle,
        "throughput": concurrent.throughput(
            steady, settings.concurrency, settings.sessions, per_thread,
            1 if starts is None else concurrent.max_in_flight(starts, steady.latencies_ns),
        ),
    }  # fmt: skip


def _memory_method(report: SamplerReport, hwm_method: str, hwm_reset: bool) -> str:
    reset = "reset before load" if hwm_reset else "process lifetime, could not reset"
    steady = ""
    if report.steady_interval_ms is not None:
        steady = f" (every {report.steady_interval_ms:g} ms in the steady window, and at its edges)"
    return (
        f"peak: psutil RSS sampled every {report.interval_ms:g} ms{steady} by a background "
        f"thread; hwm: {hwm_method} ({reset})"
    )
