"""Worker start-up: what running a job in a fresh child costs beyond measure() itself.

Per job, overhead = wall time of the call - time spent inside measure(). In the agent's child
(agent.jobs.worker.run_job) that is the fork from the server, the child's set-up, sending the result
back and reaping the child; measure() is timed by the child itself. The same measure() called
in-process, timed the same way, is the reference (overhead ~0). Both sides run a tiny model
with a short steady state, interleaved, over ~20 jobs; the figure is the median child overhead
in ms, target <= 50 ms. The fork server's one-off start (imports) is reported, not counted.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from agent.engine.measure import measure
from agent.engine.options import settings_from_dict
from agent.jobs import worker
from bench.figure import Figure

JOBS = 20
TARGET_MS = 50.0
SETTINGS = {
    "threads": 1,
    "warmup_runs": 5,
    "warmup_seconds": 0.0,
    "min_iterations": 200,
    "min_seconds": 0.0,
}


def _tiny_model(path: Path) -> Path:
    w = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32), "W"
    )
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [4, 64])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _in_process_ms(path: Path) -> tuple[float, float]:
    """(overhead ms, measure ms) of measure() called here, timed like the child times it."""
    t0 = time.perf_counter()
    settings = settings_from_dict(SETTINGS)
    t1 = time.perf_counter()
    measure(path, settings, "tiny")
    t2 = time.perf_counter()
    return ((t2 - t0) - (t2 - t1)) * 1e3, (t2 - t1) * 1e3


def _child_ms(path: Path) -> tuple[float, float]:
    """(overhead ms, measure ms) of the same job through agent.jobs.worker.run_job."""
    out = worker.run_job(path, SETTINGS, "tiny", timeout_s=60.0)
    if not out.ok or out.measure_s is None:
        raise RuntimeError(f"worker job failed: {out.error_kind}: {out.error}")
    return (out.wall_s - out.measure_s) * 1e3, out.measure_s * 1e3


def run() -> list[Figure]:
    server = worker.start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = _tiny_model(Path(tmp) / "tiny.onnx")
            _child_ms(path), _in_process_ms(path)  # first job of each side: cold caches
            child, local = [], []
            for _ in range(JOBS):
                child.append(_child_ms(path))
                local.append(_in_process_ms(path))
    finally:
        worker.stop_server()
    over = np.array([c[0] for c in child])
    detail = (
        f"median per-job overhead of run_job (wall - measure) over {JOBS} jobs, in ms: "
        f"{np.median(over):.1f} (p90 {np.percentile(over, 90):.1f}, max {over.max():.1f}); "
        f"in-process overhead {np.median([x[0] for x in local]):.2f} ms; median measure() "
        f"{np.median([c[1] for c in child]):.1f} ms in the child vs "
        f"{np.median([x[1] for x in local]):.1f} ms in-process; tiny MatMul 4x64x64, 1 thread; "
        f"fork server start {server.start_s * 1e3:.0f} ms once, not counted"
    )
    return [Figure("worker start-up overhead, ms per job", float(np.median(over)),
                   TARGET_MS, True, detail)]  # fmt: skip
