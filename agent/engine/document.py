"""Assemble the result document (schema in shared.result) from what a measurement saw."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnxruntime as ort
import psutil

from agent.board import device
from agent.engine.sampler import SamplerReport
from agent.engine.verdict import Observations, judge
from agent.inputs import numpy_dtype
from shared.result import RESULT_SCHEMA_VERSION
from shared.stats import PERCENTILE_DEFINITION, summarize

if TYPE_CHECKING:
    from agent.engine.measure import MeasureSettings


def build(
    model_path: Path,
    model_name: str | None,
    sha256: str,
    settings: MeasureSettings,
    session: ort.InferenceSession,
    shapes: dict[str, tuple[int, ...]],
    load_ns: int,
    phases: dict[str, Any],
    report: SamplerReport,
    memory: dict[str, Any],
) -> dict[str, Any]:
    """The full, JSON-ready result document."""
    steady = phases["steady"]
    stats = summarize(steady.latencies_ns)
    cpu = phases["cpu"]
    obs = Observations(
        stats=stats,
        capped_before_minimum=steady.capped and stats["n"] < settings.stop.min_iterations,
        freq_min_mhz=report.freq_min_mhz,
        freq_max_mhz=report.freq_max_mhz,
        freq_available=bool(report.freq_max_mhz),
        throttle_events=phases["throttle"],
        foreign_cpu_cores=cpu.foreign_cores,
        steal_fraction=cpu.steal_fraction,
        board_throttle=board_throttle(phases["power"]),
        own_threads=own_threads(settings),
        cores=psutil.cpu_count(logical=True),
    )
    valid, reasons, warnings = judge(obs, settings.limits)
    warm = phases["warm"]
    return {
        "schema_version": RESULT_SCHEMA_VERSION,
        "model": {
            "name": model_name or model_path.stem,
            "sha256": sha256,
            "size_bytes": model_path.stat().st_size,
            "inputs": inputs_used(session, shapes, settings),
            "outputs": {o.name: {"type": o.type} for o in session.get_outputs()},
        },
        "load_ms": load_ns / 1e6,
        "first_inference_ms": phases["first_ns"] / 1e6,
        "warmup": {"n": int(warm.size), "ms": float(warm.sum()) / 1e6},
        "steady_seconds": (steady.end_ns - steady.start_ns) / 1e9,
        "stop_reason": steady.stop_reason,
        "latency_ms": stats,
        "throughput": phases["throughput"],
        "percentile_definition": PERCENTILE_DEFINITION,
        "memory": memory,
        "valid": valid,
        "invalid_reasons": reasons,
        "warnings": warnings,
        "system": _system(report, phases, settings),
        "device": device.describe(settings.root),
        "settings": settings.as_dict(wire_values=False),
        "power": phases["power"],
        "power_unavailable_reason": phases["power_reason"],
    }


def own_threads(settings: MeasureSettings) -> int:
    """How many threads of ours may run at once: each of the --concurrency callers runs its
    request on up to --threads intra-op threads (ORT's default: one per physical core)."""
    intra = settings.session.threads or psutil.cpu_count(logical=False) or 1
    return settings.concurrency * intra


def inputs_used(
    session: ort.InferenceSession, shapes: dict[str, tuple[int, ...]], settings: MeasureSettings
) -> dict[str, dict[str, Any]]:
    """Every input as it was fed: shape, dtype and source, so a result says which data (and so
    which control-flow branch) it measured: ``synthesized`` with its seed, or the given value
    (``shared.input_values.InputValue.describe``: the value itself, or a file by name and
    sha256). ``type`` is onnxruntime's type string; dtype is numpy's name where it has one."""
    out: dict[str, dict[str, Any]] = {}
    for arg in session.get_inputs():
        dtype = numpy_dtype(arg)
        entry: dict[str, Any] = {
            "type": arg.type,
            "shape": list(shapes[arg.name]),
            "dtype": str(dtype) if dtype is not None else arg.type.removeprefix("tensor(")[:-1],
        }
        value = settings.input_values.get(arg.name)
        if value is None:
            entry |= {"source": "synthesized", "seed": settings.seed}
        else:
            described = value.describe()
            entry |= {k: v for k, v in described.items() if k not in ("shape", "dtype")}
            entry["value_shape"] = described["shape"]
        out[arg.name] = entry
    return out


def _system(
    report: SamplerReport, phases: dict[str, Any], settings: MeasureSettings
) -> dict[str, Any]:
    cpu = phases["cpu"]
    freqs = report.freq_max_mhz
    return {
        "cpu_freq_mhz": (
            {
                "min": {str(c): v for c, v in report.freq_min_mhz.items()},
                "max": {str(c): v for c, v in freqs.items()},
            }
            if freqs
            else None
        ),
        "governors": report.governors or None,
        "temperatures_max_c": report.temp_max_c or None,
        "cpu_util_percent": cpu.util_percent,
        "own_cpu_cores": cpu.own_cores,
        "own_threads": own_threads(settings),
        "foreign_cpu_cores": cpu.foreign_cores,
        "steal_fraction": cpu.steal_fraction,
        "loadavg_start": phases["loadavg"][0],
        "loadavg_end": phases["loadavg"][1],
        "throttle_events": phases["throttle"],
        "sampler": {
            "interval_ms": report.interval_ms,
            "samples": report.samples,
            "errors": report.errors,
        },
    }


def board_throttle(power: dict[str, Any] | None) -> list[str]:
    """Throttle flags the board's own status raised during the run (Raspberry Pi
    get_throttled): flags set now at the end, or newly set since boot."""
    throttle = (power or {}).get("throttle")
    if not throttle:
        return []
    before = (throttle.get("before") or {}).get("throttled") or {}
    after = (throttle.get("after") or {}).get("throttled") or {}
    new_since_boot = set(after.get("since_boot", [])) - set(before.get("since_boot", []))
    return sorted(set(after.get("now", [])) | new_since_boot)


def stamp_finished(doc: dict[str, Any]) -> None:
    """Set `finished_at` (UTC, ISO 8601 to the second, as `started_at`) to now.

    Whoever ran measure() calls it as soon as that returns (the job child, `bench`), so the
    window [started_at, finished_at] covers every pass, the profiling and calibration passes
    after the timed runs included: the span during which the device lock was needed.
    """
    doc["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
