"""Harness overhead: `flopgap-agent bench`'s median against a bare `session.run` loop.

Both use one intra-op thread and ORT's full optimisation on the same model file, in the same
process, interleaved over several rounds so that machine drift hits both sides alike. The
figure is the median over rounds of (flopgap median / bare median). Targets: <= 1.02 on a
~1 ms model, <= 1.10 on a ~50 us model.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from agent.engine.measure import MeasureSettings, measure
from agent.engine.session import SessionSettings
from agent.engine.timing import StopRule
from bench.figure import Figure

ROUNDS = 5
SECONDS_PER_SIDE = 1.5
# (label, rows, width, target): MatMul [rows, width] x [width, width] + Relu.
CASES = (("~1 ms model", 96, 768, 1.02), ("~50 us model", 48, 240, 1.10))


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


def _bare_median_ns(path: Path, seconds: float) -> float:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
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


def _flopgap_median_ns(path: Path, seconds: float) -> float:
    settings = MeasureSettings(
        session=SessionSettings(threads=1),
        warmup_runs=20,
        warmup_seconds=0.0,
        stop=StopRule(min_iterations=64, min_seconds=seconds, max_seconds=seconds * 4),
    )
    return float(np.median(measure(path, settings).latencies_ns))


def run() -> list[Figure]:
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, rows, width, target in CASES:
            path = _model(Path(tmp) / f"mm_{rows}x{width}.onnx", rows, width)
            ratios, bare_all, ours_all = [], [], []
            for _ in range(ROUNDS):
                bare = _bare_median_ns(path, SECONDS_PER_SIDE)
                ours = _flopgap_median_ns(path, SECONDS_PER_SIDE)
                ratios.append(ours / bare)
                bare_all.append(bare)
                ours_all.append(ours)
            detail = (
                f"MatMul {rows}x{width}x{width}, 1 thread; median bare "
                f"{np.median(bare_all) / 1e3:.1f} us, flopgap "
                f"{np.median(ours_all) / 1e3:.1f} us; per-round ratios "
                + ", ".join(f"{r:.3f}" for r in ratios)
            )
            figures.append(
                Figure(f"harness overhead, {label}", float(np.median(ratios)), target, True, detail)
            )
    return figures
