"""Device calibration: attainable float32 FLOP/s and memory bandwidth, through onnxruntime.

A roofline needs two numbers per board: the peak FLOP/s the runtime can reach and the bandwidth
it can stream at. Both are measured through ORT itself (its MLAS kernels and thread pool, at the
measurement's intra-op thread count), not a vendor datasheet, so the ridge point is the one the
measured models live under.

Method:
- peak: n x n by n x n float32 MatMuls, 2 * n**3 FLOP per run, at several n up to matmul_n;
  the best run of any size is kept. One size is not enough: on a 1-thread x86 core, n = 1024
  reached 96 GFLOP/s where n = 384 reached 112 (operands that stay in cache), and the zoo's
  Gemms ran at up to 111, "faster than the roofline allows" against the 1024-only peak.
- bandwidth: a float32 Add over three arrays of stream_bytes / 3 each (two read, one written),
  so stream_bytes move per run (write-allocate traffic not counted, as STREAM does); arrays are
  far beyond any last-level cache at the default size; best run kept.
- each is warmed up once, then measured in `rounds` (3) interleaved rounds sharing seconds / 2
  per kind; the best round is the figure, every round's figure and the spread are kept.
  Units are decimal GFLOP/s and GB/s.
- outputs go to fixed buffers (io_binding), first touched by the warm-up, so no page fault
  or allocation is timed.
- sizes shrink to fit a quarter of the available memory (psutil), so a 1 GB Pi survives.

Verdict: the window of the rounds is watched (agent.engine.watch) for other processes' CPU use,
CPU frequency changes and thermal throttling, and judged by verdict.judge_system, the same
checks a measurement gets. The collector never keeps an invalid calibration as the device's
figure (collector.enrich); it asks again on a later job.

The calibration document (what `calibrate` returns, JSON-ready):
  peak_gflops, bandwidth_gbs      the best round's figures
  peak_gflops_runs, bandwidth_gbs_runs   every round's figure, in order
  peak_spread, bandwidth_spread   (best - worst) / best over the rounds (None for one round)
  rounds, matmul_n (the size that reached the peak), stream_bytes (moved a run),
  matmul_runs, stream_runs, threads, onnxruntime, method
  measured_at                     UTC, ISO 8601, when the rounds began
  valid, invalid_reasons, warnings   the verdict
  max_foreign_cpu_cores           the foreign-CPU limit it was judged by
  system                          foreign/own CPU cores, steal, frequency range, governors and
                                  throttle events over the rounds (keys of a result's system)
  caches                          cpu0's caches from sysfs (agent.probes.caches): level, type,
                                  size_bytes, shared_cpus; [] when sysfs has none
  l1_bytes, l2_bytes, l3_bytes    data cache sizes (None where unknown)
  l1_bandwidth_gbs ... l3_...     per-level GB/s (agent.engine.cache_bandwidth; None where the
                                  level is unknown or noise hid it), with _runs and _spread
  cache_note                      "cache sizes unknown: DRAM roof only" when sysfs has none
  cache_method                    how the per-level figures were taken

The two one-node models are written as protobuf bytes here (the agent never imports onnx),
with symbolic dimensions, so one model serves every size.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
import psutil

from agent.engine import cache_bandwidth
from agent.engine.session import SessionSettings, session_options
from agent.engine.verdict import Limits, judge_system
from agent.engine.watch import Watch
from agent.probes.caches import UNKNOWN, data_levels, read_caches
from shared.errors import UsageError
from shared.protobuf_bytes import field, int_field

MIB = 1 << 20
DEFAULT_MATMUL_N = 1024  # 2.1 GFLOP a run: well under a second on a Pi 4, ms on a desktop
PEAK_SIZES = (256, 384, 512)  # also tried, below matmul_n: cache-resident operands
DEFAULT_STREAM_BYTES = 256 * MIB  # three ~85 MiB arrays, far beyond a last-level cache
DEFAULT_CACHE_SECONDS = 0.6  # all cache levels together, over all rounds
ROUNDS = 3  # best of three, spread kept: one round spoiled by a burst shows, and is not kept
_FLOAT = 1  # onnx TensorProto.FLOAT
_MEMORY_SHARE = 4  # use at most 1/4 of the available memory
METHOD = (
    "peak: best run of n x n by n x n float32 MatMuls in onnxruntime (CPUExecutionProvider) "
    "over n in 256, 384, 512 and matmul_n (those <= matmul_n), 2*n^3 FLOP a run; bandwidth: "
    "best run of a float32 Add over three arrays of stream_bytes/3 each (2 read + 1 written = "
    "stream_bytes, write-allocate not counted); each warmed up once, then rounds interleaved "
    "(every MatMul size, then the Add), each kind given seconds/2 over all rounds (the MatMul "
    "sizes share theirs); the best round kept, every round's figure and the spread recorded; "
    "outputs bound to buffers the warm-up touched; decimal GFLOP/s and GB/s"
)


def _value_info(name: str, dims: tuple[str, ...]) -> bytes:
    """ValueInfoProto of a float tensor with symbolic dims (TypeProto.Tensor.shape.dim_param)."""
    shape = b"".join(field(1, field(2, dim)) for dim in dims)
    tensor = int_field(1, _FLOAT) + field(2, shape)
    return field(1, name) + field(2, field(1, tensor))


def one_node_model(
    op_type: str, inputs: dict[str, tuple[str, ...]], output: tuple[str, tuple[str, ...]]
) -> bytes:
    """ModelProto bytes (IR 8, opset 13) of a graph holding one `op_type` node.

    Field numbers from onnx.proto: ModelProto ir_version=1 opset_import=8 graph=7; GraphProto
    node=1 name=2 input=11 output=12; NodeProto input=1 output=2 name=3 op_type=4.
    """
    node = b"".join(field(1, name) for name in inputs) + field(2, output[0])
    node += field(3, op_type.lower()) + field(4, op_type)
    graph = field(1, node) + field(2, f"calibrate_{op_type.lower()}")
    graph += b"".join(field(11, _value_info(name, dims)) for name, dims in inputs.items())
    graph += field(12, _value_info(*output))
    return int_field(1, 8) + field(8, field(1, "") + int_field(2, 13)) + field(7, graph)


MATMUL_MODEL = one_node_model("MatMul", {"a": ("m", "k"), "b": ("k", "n")}, ("c", ("m", "n")))
ADD_MODEL = one_node_model("Add", {"x": ("s",), "y": ("s",)}, ("z", ("s",)))


def _best_seconds(run: Callable[[], object], budget_s: float) -> tuple[float, int]:
    """(fastest run in s, runs timed): runs until `budget_s` has passed, at least one."""
    best, count = float("inf"), 0
    deadline = time.perf_counter() + budget_s
    while count == 0 or time.perf_counter() < deadline:
        t0 = time.perf_counter_ns()
        run()
        best = min(best, (time.perf_counter_ns() - t0) / 1e9)
        count += 1
    return best, count


def _bound_runner(
    model: bytes, threads: int, feeds: dict[str, np.ndarray], out: tuple[str, np.ndarray]
) -> Callable[[], object]:
    """A zero-argument run of `model` whose output is written into the given numpy buffer.

    The binding holds raw pointers, so the run keeps the arrays alive for as long as it lives.
    """
    opts = session_options(SessionSettings(threads=threads))
    session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    binding = session.io_binding()
    for name, array in feeds.items():
        binding.bind_cpu_input(name, array)
    name, buffer = out
    binding.bind_output(name, "cpu", 0, np.float32, list(buffer.shape), buffer.ctypes.data)
    arrays = (feeds, buffer)

    def run() -> object:
        session.run_with_iobinding(binding)
        return arrays

    return run


def _matmul_runner(n: int, threads: int) -> Callable[[], object]:
    """An n x n by n x n MatMul bound to its own buffers."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    return _bound_runner(MATMUL_MODEL, threads, {"a": a, "b": b}, ("c", c))


def _add_runner(count: int, threads: int) -> Callable[[], object]:
    """A float32 Add over `count` elements (12 * count bytes moved a run)."""
    x, y = np.full(count, 1.0, np.float32), np.full(count, 2.0, np.float32)
    z = np.empty(count, dtype=np.float32)
    return _bound_runner(ADD_MODEL, threads, {"x": x, "y": y}, ("z", z))


def _fit(requested: int, bytes_per_unit: int, available: int) -> int:
    """The largest size <= requested whose memory stays within available / _MEMORY_SHARE."""
    return max(1, min(requested, available // _MEMORY_SHARE // bytes_per_unit))


def spread(values: list[float]) -> float | None:
    """(best - worst) / best of the rounds' figures; None for fewer than two rounds."""
    if len(values) < 2 or max(values) <= 0:
        return None
    return (max(values) - min(values)) / max(values)


def calibrate(
    threads: int,
    seconds: float = 2.0,
    *,
    matmul_n: int = DEFAULT_MATMUL_N,
    stream_bytes: int = DEFAULT_STREAM_BYTES,
    rounds: int = ROUNDS,
    cache_seconds: float = DEFAULT_CACHE_SECONDS,
    limits: Limits | None = None,
    root: str | None = None,
) -> dict[str, Any]:
    """Measure peak float32 GFLOP/s and streaming GB/s with `threads` intra-op threads, and
    judge whether the system let it (verdict.judge_system under `limits`).

    Takes about `seconds` + `cache_seconds` plus one warm-up run of each op; threads=0 means
    ORT's default; cache_seconds=0 skips the per-level cache figures (DRAM roof only).
    `root` is where sysfs is read (FLOPGAP_SYSFS_ROOT or "/" by default). The result is
    described in the module docstring (the calibration document).
    """
    if seconds <= 0 or matmul_n < 1 or stream_bytes < 12 or rounds < 1 or cache_seconds < 0:
        raise UsageError(
            "calibrate needs seconds > 0, matmul_n >= 1, stream_bytes >= 12, rounds >= 1 "
            "and cache_seconds >= 0"
        )
    limits = limits or Limits()
    available = int(psutil.virtual_memory().available)
    top = max(1, min(matmul_n, math.isqrt(available // _MEMORY_SHARE // 12)))  # 3 n x n float32
    sizes = sorted({n for n in PEAK_SIZES if n < top} | {top})
    matmuls = {size: _matmul_runner(size, threads) for size in sizes}
    count = _fit(stream_bytes // 12, 12, available)  # 3 arrays x 4 bytes per element
    add = _add_runner(count, threads)
    measured_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    root = root if root is not None else os.environ.get("FLOPGAP_SYSFS_ROOT", "/")
    caches = read_caches(root)
    sizes_by_level = {n: b for n, b in data_levels(caches).items() if n in cache_bandwidth.LEVELS}
    probes = {n: cache_bandwidth.level_probe(b) for n, b in sizes_by_level.items()}
    with Watch(root) as watch:
        figures = _rounds(matmuls, add, 12 * count, seconds, rounds)
        if probes and cache_seconds > 0:
            figures |= cache_bandwidth.measure_levels(probes, cache_seconds, rounds)
    figures |= _cache_keys(caches, sizes_by_level, figures)
    valid, reasons, warnings = judge_system(watch.observations(), limits)
    for what in ("peak", "bandwidth", *(f"l{n}_bandwidth" for n in probes)):
        gap = figures.get(f"{what}_spread")
        label = f"L{what[1]} bandwidth" if what.startswith("l") else what
        if gap is not None and gap > limits.max_cv:
            warnings.append(
                f"calibration rounds disagree: {label} varied {gap:.1%} between the best and "
                f"the worst of {rounds} rounds (above {limits.max_cv:.0%}); the best is kept"
            )
    return {
        **figures,
        "threads": threads,
        "stream_bytes": 12 * count,
        "rounds": rounds,
        "onnxruntime": ort.__version__,
        "method": METHOD,
        "measured_at": measured_at,
        "valid": valid,
        "invalid_reasons": reasons,
        "warnings": warnings,
        "max_foreign_cpu_cores": limits.max_foreign_cpu_cores,
        "system": watch.system(),
    }


def _cache_keys(
    caches: list[dict[str, Any]], sizes: dict[int, int], figures: dict[str, Any]
) -> dict[str, Any]:
    """The cache sizes, a None figure for every level not measured, and the fallback note."""
    keys: dict[str, Any] = {"caches": caches, "cache_method": cache_bandwidth.METHOD}
    for n in cache_bandwidth.LEVELS:
        keys[f"l{n}_bytes"] = sizes.get(n)
        keys[f"l{n}_bandwidth_gbs"] = figures.get(f"l{n}_bandwidth_gbs")
    keys["cache_note"] = None if sizes else UNKNOWN
    return keys


def _rounds(
    matmuls: dict[int, Callable[[], object]],
    add: Callable[[], object],
    moved: int,
    seconds: float,
    rounds: int,
) -> dict[str, Any]:
    """Warm every runner once, then `rounds` rounds of (every MatMul size, the Add), each
    round given seconds / rounds. Interleaved, so a burst of foreign work spoils one round's
    figure, not every figure of one kind; the best round is kept and the spread shown."""
    for run in [*matmuls.values(), add]:
        run()
    peaks: list[float] = []
    bandwidths: list[float] = []
    best_n, mm_runs, add_runs = next(iter(matmuls)), 0, 0
    for _ in range(rounds):
        best = 0.0
        for size, run in matmuls.items():
            size_s, runs = _best_seconds(run, seconds / 2 / rounds / len(matmuls))
            mm_runs += runs
            gflops = 2.0 * size**3 / size_s / 1e9
            if gflops > best:
                best = gflops
                if gflops > max(peaks, default=0.0):
                    best_n = size
        peaks.append(best)
        add_s, runs = _best_seconds(add, seconds / 2 / rounds)
        add_runs += runs
        bandwidths.append(moved / add_s / 1e9)
    return {
        "peak_gflops": max(peaks),
        "bandwidth_gbs": max(bandwidths),
        "matmul_n": best_n,
        "matmul_runs": mm_runs,
        "stream_runs": add_runs,
        "peak_gflops_runs": peaks,
        "bandwidth_gbs_runs": bandwidths,
        "peak_spread": spread(peaks),
        "bandwidth_spread": spread(bandwidths),
    }
