"""Harness overhead: `flopgap-agent bench`'s median against a bare `session.run` loop.

Both use the same intra-op thread count and ORT's full optimisation on the same model file, in
the same process, interleaved over several rounds (the side that goes first alternates) so that
machine drift and other users' load hit both sides alike. The figure is the median over rounds
of (flopgap median / bare median). Targets: <= 1.02 on a ~1 ms MatMul and <= 1.10 on a ~50 us
one at 1 thread, where the harness's own threads have a spare core; <= 1.01 on a 5-15 ms CNN
at threads = logical cores, where anything the harness wakes up during the steady window takes
a core from one of ORT's threads and stalls the others at the next barrier.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import psutil
from onnx import TensorProto, helper, numpy_helper

from agent.engine.measure import MeasureSettings, measure
from agent.engine.session import SessionSettings
from agent.engine.timing import StopRule
from bench.figure import Figure

ROUNDS = 5
SECONDS_PER_SIDE = 1.5
# (label, rows, width, target): MatMul [rows, width] x [width, width] + Relu, 1 thread.
CASES = (("~1 ms model", 96, 768, 1.02), ("~50 us model", 48, 240, 1.10))
# The CNN at threads = logical cores: CONVS 3x3 convolutions of CHANNELS channels at 56x56
# (~7 ms a run on 2 EPYC cores, 2.3 GFLOP); more rounds, since other load moves it more.
CNN_CHANNELS, CNN_CONVS, CNN_ROUNDS, CNN_TARGET = 96, 4, 8, 1.01


def _model(path: Path, rows: int, width: int) -> Path:
    w = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((width, width)).astype(np.float32), "W"
    )
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
        "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, width])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [rows, width])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _cnn(path: Path, channels: int, convs: int) -> Path:
    """[1, 3, 56, 56] through `convs` 3x3 Conv + Relu layers of `channels` channels."""
    rng = np.random.default_rng(0)
    nodes, weights, prev, c_in = [], [], "x", 3
    for i in range(convs):
        w = rng.standard_normal((channels, c_in, 3, 3)).astype(np.float32) * 0.1
        weights += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(
            np.zeros(channels, np.float32), f"b{i}")]  # fmt: skip
        nodes += [
            helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
        ]
        prev, c_in = f"r{i}", channels
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 56, 56])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, channels, 56, 56])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _bare_median_ns(path: Path, seconds: float, threads: int = 1) -> float:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    meta = sess.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal(meta.shape).astype(np.float32)
    feeds = {meta.name: x}
    for _ in range(20):
        sess.run(None, feeds)
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter_ns()
        sess.run(None, feeds)
        samples.append(time.perf_counter_ns() - t0)
    return float(np.median(samples))


def _flopgap_median_ns(path: Path, seconds: float, threads: int = 1) -> tuple[float, float]:
    """(median ns, cores other processes kept busy during the steady window)."""
    settings = MeasureSettings(
        session=SessionSettings(threads=threads),
        warmup_runs=20,
        warmup_seconds=0.0,
        stop=StopRule(min_iterations=64, min_seconds=seconds, max_seconds=seconds * 4),
    )
    result = measure(path, settings)
    foreign = result.document["system"]["foreign_cpu_cores"] or 0.0
    return float(np.median(result.latencies_ns)), float(foreign)


def _interleaved(path: Path, rounds: int, threads: int) -> tuple[list[float], ...]:
    """(ratios, bare medians, flopgap medians, foreign cores) over `rounds`; the first side
    alternates."""
    ratios, bare_all, ours_all, foreign_all = [], [], [], []
    for i in range(rounds):
        if i % 2:
            ours, foreign = _flopgap_median_ns(path, SECONDS_PER_SIDE, threads)
            bare = _bare_median_ns(path, SECONDS_PER_SIDE, threads)
        else:
            bare = _bare_median_ns(path, SECONDS_PER_SIDE, threads)
            ours, foreign = _flopgap_median_ns(path, SECONDS_PER_SIDE, threads)
        ratios.append(ours / bare)
        bare_all.append(bare)
        ours_all.append(ours)
        foreign_all.append(foreign)
    return ratios, bare_all, ours_all, foreign_all


def _figure(name: str, what: str, target: float, sides: tuple[list[float], ...]) -> Figure:
    ratios, bare_all, ours_all, foreign = sides
    detail = (
        f"{what}; median bare {np.median(bare_all) / 1e3:.1f} us, flopgap "
        f"{np.median(ours_all) / 1e3:.1f} us; per-round ratios "
        + ", ".join(f"{r:.3f}" for r in ratios)
        + "; other processes' CPU in each flopgap window, cores: "
        + ", ".join(f"{f:.2f}" for f in foreign)
    )
    return Figure(name, float(np.median(ratios)), target, True, detail)


def run() -> list[Figure]:
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, rows, width, target in CASES:
            path = _model(Path(tmp) / f"mm_{rows}x{width}.onnx", rows, width)
            what = f"MatMul {rows}x{width}x{width}, 1 thread"
            sides = _interleaved(path, ROUNDS, 1)
            figures.append(_figure(f"harness overhead, {label}", what, target, sides))
        cores = psutil.cpu_count(logical=True) or 1
        path = _cnn(Path(tmp) / "cnn.onnx", CNN_CHANNELS, CNN_CONVS)
        what = f"CNN {CNN_CONVS}x Conv3x3 {CNN_CHANNELS} ch at 56x56, {cores} threads"
        sides = _interleaved(path, CNN_ROUNDS, cores)
        name = "harness overhead, 5-15 ms CNN, threads = logical cores"
        figures.append(_figure(name, what, CNN_TARGET, sides))
    return figures
