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
- each is warmed up once, then repeated for seconds / 2; units are decimal GFLOP/s and GB/s.
- outputs go to fixed buffers (io_binding), first touched by the warm-up, so no page fault
  or allocation is timed.
- sizes shrink to fit a quarter of the available memory (psutil), so a 1 GB Pi survives.

The two one-node models are written as protobuf bytes here (the agent never imports onnx),
with symbolic dimensions, so one model serves every size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
import psutil

from agent.engine.session import SessionSettings, session_options
from shared.errors import UsageError
from shared.protobuf_bytes import field, int_field

MIB = 1 << 20
DEFAULT_MATMUL_N = 1024  # 2.1 GFLOP a run: well under a second on a Pi 4, ms on a desktop
PEAK_SIZES = (256, 384, 512)  # also tried, below matmul_n: cache-resident operands
DEFAULT_STREAM_BYTES = 256 * MIB  # three ~85 MiB arrays, far beyond a last-level cache
_FLOAT = 1  # onnx TensorProto.FLOAT
_MEMORY_SHARE = 4  # use at most 1/4 of the available memory
METHOD = (
    "peak: best run of n x n by n x n float32 MatMuls in onnxruntime (CPUExecutionProvider) "
    "over n in 256, 384, 512 and matmul_n (those <= matmul_n), 2*n^3 FLOP a run; bandwidth: "
    "best run of a float32 Add over three arrays of stream_bytes/3 each (2 read + 1 written = "
    "stream_bytes, write-allocate not counted); each warmed up once then repeated for "
    "seconds/2 (the MatMul sizes share theirs), outputs bound to buffers the warm-up "
    "touched; decimal GFLOP/s and GB/s"
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
    """(fastest run in s, runs timed): one warm-up, then runs until `budget_s` has passed."""
    run()
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
    """A zero-argument run of `model` whose output is written into the given numpy buffer."""
    opts = session_options(SessionSettings(threads=threads))
    session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    binding = session.io_binding()
    for name, array in feeds.items():
        binding.bind_cpu_input(name, array)
    name, buffer = out
    binding.bind_output(name, "cpu", 0, np.float32, list(buffer.shape), buffer.ctypes.data)
    return lambda: session.run_with_iobinding(binding)


def _matmul_seconds(n: int, threads: int, budget_s: float) -> tuple[float, int]:
    """(fastest n x n MatMul run in s, runs timed)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    return _best_seconds(_bound_runner(MATMUL_MODEL, threads, {"a": a, "b": b}, ("c", c)),
                         budget_s)  # fmt: skip


def _fit(requested: int, bytes_per_unit: int, available: int) -> int:
    """The largest size <= requested whose memory stays within available / _MEMORY_SHARE."""
    return max(1, min(requested, available // _MEMORY_SHARE // bytes_per_unit))


def calibrate(
    threads: int,
    seconds: float = 2.0,
    *,
    matmul_n: int = DEFAULT_MATMUL_N,
    stream_bytes: int = DEFAULT_STREAM_BYTES,
) -> dict[str, Any]:
    """Measure peak float32 GFLOP/s and streaming GB/s with `threads` intra-op threads.

    Takes about `seconds` plus one warm-up run of each op; threads=0 means ORT's default.
    Returns peak_gflops, bandwidth_gbs, threads, matmul_n (the size that reached the peak),
    stream_bytes (moved per run, after any memory cap), onnxruntime, method, and the run counts.
    """
    if seconds <= 0 or matmul_n < 1 or stream_bytes < 12:
        raise UsageError("calibrate needs seconds > 0, matmul_n >= 1 and stream_bytes >= 12")
    available = int(psutil.virtual_memory().available)
    top = max(1, min(matmul_n, math.isqrt(available // _MEMORY_SHARE // 12)))  # 3 n x n float32
    sizes = sorted({n for n in PEAK_SIZES if n < top} | {top})
    gflops, n, mm_runs = 0.0, top, 0
    for size in sizes:
        size_s, runs = _matmul_seconds(size, threads, seconds / 2 / len(sizes))
        mm_runs += runs
        if 2.0 * size**3 / size_s / 1e9 > gflops:
            gflops, n = 2.0 * size**3 / size_s / 1e9, size
    count = _fit(stream_bytes // 12, 12, available)  # 3 arrays x 4 bytes per element
    x, y = np.full(count, 1.0, np.float32), np.full(count, 2.0, np.float32)
    z = np.empty(count, dtype=np.float32)
    add = _bound_runner(ADD_MODEL, threads, {"x": x, "y": y}, ("z", z))
    add_s, add_runs = _best_seconds(add, seconds / 2)
    moved = 12 * count
    return {
        "peak_gflops": gflops,
        "bandwidth_gbs": moved / add_s / 1e9,
        "threads": threads,
        "matmul_n": n,
        "stream_bytes": moved,
        "matmul_runs": mm_runs,
        "stream_runs": add_runs,
        "onnxruntime": ort.__version__,
        "method": METHOD,
    }
