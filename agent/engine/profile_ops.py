"""Per-node kernel times from ONNX Runtime's profiler, in a pass of its own.

The profiler time-stamps every node and adds fences around it, so it runs in a new session
AFTER the timed runs and never touches their latency statistics. The same session saves the
graph ORT actually executes (after fusion and layout changes) as ONNX, because per-node times
only join to theory on that graph: a FusedConv row carries the work of a Conv, a BN and a Relu.

ORT writes one JSON event per line: ``cat == "Node"`` events named ``<node>_kernel_time`` carry
``dur`` in microseconds (integer, so a node under 1 µs shows 0) and ``args.op_name``,
``args.provider`` and the tensor shapes; a ``cat == "Session"`` event ``model_run`` brackets
each inference, which is how warm-up runs are told apart from measured ones.
"""

from __future__ import annotations

import bisect
import json
import math
import statistics
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import onnxruntime as ort

from agent import inputs
from agent.engine.ort_options import provider_list
from agent.engine.session import (
    SessionSettings,
    check_model_file,
    check_provider,
    describe_ort_error,
    session_options,
    translate_ort_error,
)
from shared.errors import MeasurementError, UsageError
from shared.hashing import file_sha256
from shared.input_values import InputValue

PROFILE_FORMAT = 1
_SUFFIX = "_kernel_time"
_MAX_EVENT_CHARS = 1 << 20  # an event longer than this is not one ORT wrote
OVERHEAD_NOTE = (
    "kernel times come from onnxruntime's profiler in a separate session run after the timed "
    "runs; the profiler adds a timestamp pair and fences per node, so the sum of kernel times "
    "is not the measured latency: use them for how a run splits between nodes. dur resolution "
    "is 1 µs."
)


@dataclass(frozen=True)
class OpProfile:
    """The plain-JSON profile document and the files it was made from (all in work_dir)."""

    document: dict[str, Any]
    optimized_model: Path
    profile_file: Path


class _Kernel(NamedTuple):
    """One kernel event: its row fields (name, op_type, provider, shapes), ts and dur in µs."""

    row: dict[str, Any]
    ts: float
    dur: float


def profile_ops(
    model_path: Path,
    session_settings: SessionSettings,
    input_shapes: Mapping[str, tuple[int, ...]],
    work_dir: Path,
    runs: int = 20,
    warmup_runs: int = 2,
    seed: int = 0,
    values: Mapping[str, InputValue] | None = None,
) -> OpProfile:
    """Per-node kernel times of `runs` inferences after `warmup_runs`; files go to work_dir.

    Threads, optimisation level and provider come from `session_settings`, as in the measurement,
    so the profiled graph is the measured graph; ``values`` are the given input values, fed as
    in the measurement, so the profiled run takes the measured branch. Raises ModelError,
    UsageError, MeasurementError.
    """
    if runs < 1 or warmup_runs < 0:
        raise UsageError("profile needs runs >= 1 and warmup_runs >= 0")
    model_path, work_dir = Path(model_path), Path(work_dir)
    check_model_file(model_path)
    check_provider(session_settings)
    work_dir.mkdir(parents=True, exist_ok=True)
    optimized = work_dir / f"{model_path.stem}.optimized.onnx"
    opts = session_options(session_settings)
    opts.enable_profiling = True
    opts.profile_file_prefix = str(work_dir / f"{model_path.stem}.profile")
    opts.optimized_model_filepath = str(optimized)
    try:
        providers = provider_list(session_settings.provider, session_settings.providers)
        session = ort.InferenceSession(str(model_path), sess_options=opts, providers=providers)
    except Exception as exc:  # ORT's pybind errors share no public base class
        raise translate_ort_error(exc, model_path) from exc
    shapes, feeds = inputs.model_feeds(
        session.get_inputs(), session.get_outputs(), input_shapes, values or {}, seed
    )
    profile_file = Path(_run_profiled(session, feeds, warmup_runs + runs))
    kernels, windows = _scan(read_events(profile_file))
    nodes = _aggregate(kernels, windows, warmup_runs)
    kept = sorted(windows)[warmup_runs:]
    document = {
        "format": PROFILE_FORMAT,
        "runs": len(kept) if windows else runs,
        "warmup_runs": warmup_runs,
        "onnxruntime": ort.__version__,
        "session": session_settings.as_dict(),
        "input_shapes": {name: list(dims) for name, dims in shapes.items()},
        "nodes": nodes,
        "total_kernel_time_us": sum(n["kernel_time_us"] for n in nodes),
        "model_run_us": statistics.median(end - start for start, end in kept) if kept else None,
        "optimized_model_file": optimized.name,
        "optimized_model_sha256": file_sha256(optimized) if optimized.is_file() else None,
        "profile_overhead_note": OVERHEAD_NOTE,
    }
    return OpProfile(document, optimized, profile_file)


def _run_profiled(session: ort.InferenceSession, feeds: inputs.Feeds, count: int) -> str:
    """Run `count` inferences on the measurement's feeds; returns the profile file ORT wrote."""
    if feeds.needs_ort_values:
        run, names = session.run_with_ort_values, [o.name for o in session.get_outputs()]
    else:
        run, names = session.run, None
    try:
        for _ in range(count):
            run(names, dict(feeds.arrays))
    except Exception as exc:  # ORT raises pybind errors with no common base
        raise MeasurementError(f"profiling run failed: {describe_ort_error(exc)}") from exc
    finally:
        path = session.end_profiling()
    return str(path)


def read_events(path: Path) -> Iterator[Any]:
    """Events of an ORT profile file, streamed so a large profile never sits in memory.

    ORT writes ``[`` and then one event per line; lines are joined until they parse (as an
    event, or as a whole array on one line), so an event split over lines still reads, and a
    part that never parses (a file cut short by a crash) is dropped.
    """
    with Path(path).open(encoding="utf-8") as handle:
        pending = ""
        for line in handle:
            pending += line
            event = _parsed(pending.strip().rstrip(","))
            if event is None:
                pending = "" if len(pending) > _MAX_EVENT_CHARS else pending
                continue
            pending = ""
            yield from event if isinstance(event, list) else (event,)


def _parsed(text: str) -> Any:
    """``text`` as JSON, or without the array's ``[``/``]`` when one clings to it; None if
    neither parses ([] for a bare bracket, so it is consumed)."""
    for candidate in (text, text.lstrip("[").rstrip("]").strip().rstrip(",")):
        if not candidate:
            return []
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    return None


def parse_profile(events: Iterable[Any], skip_runs: int = 0) -> list[dict[str, Any]]:
    """Per-node kernel times from ORT profiler events, dropping the first `skip_runs` runs.

    Each row: name, op_type, provider, calls (kernel events kept), input_shapes, output_shapes,
    output_types (from the node's first kept event) and kernel_time_us: the median over runs of
    the node's summed kernel time in one run, in µs. Malformed or unknown events are skipped,
    never fatal.
    """
    return _aggregate(*_scan(events), skip_runs)


def _number(value: Any) -> float | None:
    """A finite, non-negative number, else None (bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _shapes(value: Any) -> list[list[int]] | None:
    """``[{"float": [1, 3]}, ...]`` (ORT's layout) as ``[[1, 3], ...]``; None if malformed."""
    if not isinstance(value, list):
        return None
    out = []
    for item in value:
        dims = next(iter(item.values()), None) if isinstance(item, dict) and item else None
        if not isinstance(dims, list) or not all(isinstance(d, int) for d in dims):
            return None
        out.append(dims)
    return out


def _types(value: Any) -> list[str] | None:
    """The element type names of ORT's ``[{"float": [1, 3]}, ...]`` (``["float", ...]``), so
    the collector can size a tensor's bytes; None if malformed."""
    if not isinstance(value, list) or not all(isinstance(i, dict) and len(i) == 1 for i in value):
        return None
    return [str(next(iter(item))) for item in value]


def _scan(events: Iterable[Any]) -> tuple[list[_Kernel], list[tuple[float, float]]]:
    """Kernel events, and model_run windows as (start, end) in µs; malformed events skipped."""
    kernels, runs = [], []
    for event in events:
        if not isinstance(event, dict):
            continue
        ts, dur, name = _number(event.get("ts")), _number(event.get("dur")), event.get("name")
        if ts is None or dur is None or not isinstance(name, str):
            continue
        if event.get("cat") == "Session" and name == "model_run":
            runs.append((ts, ts + dur))
        elif event.get("cat") == "Node" and name.endswith(_SUFFIX):
            args = event["args"] if isinstance(event.get("args"), dict) else {}
            row = {
                "name": name[: -len(_SUFFIX)],
                "op_type": args.get("op_name") if isinstance(args.get("op_name"), str) else None,
                "provider": args.get("provider") if isinstance(args.get("provider"), str) else None,
                "input_shapes": _shapes(args.get("input_type_shape")),
                "output_shapes": _shapes(args.get("output_type_shape")),
                "output_types": _types(args.get("output_type_shape")),
            }
            kernels.append(_Kernel(row, ts, dur))
    return kernels, runs


def _run_index(kernels: list[_Kernel], runs: list[tuple[float, float]]) -> list[int | None]:
    """The run of each kernel event: the model_run window holding it, or (no windows) its
    ordinal among the same node's events; None when it lies outside every window."""
    index: list[int | None] = []
    if not runs:
        seen: dict[str, int] = {}
        for k in kernels:
            index.append(seen.get(k.row["name"], 0))
            seen[k.row["name"]] = (index[-1] or 0) + 1
        return index
    windows = sorted(runs)
    starts = [start for start, _ in windows]
    for k in kernels:
        i = bisect.bisect_right(starts, k.ts) - 1
        index.append(i if i >= 0 and k.ts <= windows[i][1] else None)
    return index


def _aggregate(
    kernels: list[_Kernel], runs: list[tuple[float, float]], skip: int
) -> list[dict[str, Any]]:
    """One row per node, in first-execution order, over runs numbered >= skip."""
    rows: dict[str, dict[str, Any]] = {}
    per_run: dict[str, dict[int, float]] = {}
    for k, run in zip(kernels, _run_index(kernels, runs), strict=True):
        if run is None or run < skip:
            continue
        name = k.row["name"]
        rows.setdefault(name, {**k.row, "calls": 0})["calls"] += 1
        totals = per_run.setdefault(name, {})
        totals[run] = totals.get(run, 0.0) + k.dur
    return [
        {**row, "kernel_time_us": float(statistics.median(per_run[name].values()))}
        for name, row in rows.items()
    ]
