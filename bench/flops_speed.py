"""FLOPs counting time against `onnx.load` time of the same 2,000+-node model (target <= 1.5),
and against onnx-tool's profile of it when onnx-tool is installed; and the seconds to count the
onnx wheel's backend-test corpus (target < 60 s: tests/test_corpus_backend.py counts it too,
and checks what it counts, not how fast).

Two BERT-style encoders of 2,161 nodes, one light (small width: parsing is cheap, so the
per-node Python cost of counting dominates) and one heavy (255 MB of weights, as a real model
of that size has). Times are the best of five, after one warm-up count.

Each row also gives, measured in the same run, the *floor* any Python counter built on onnx
pays: ``onnx.load`` plus one Python pass that only reads every node's op type, domain, name,
inputs, outputs and attribute names (no shapes, no formulas), and then the same plus ONNX's
C++ shape inference on the weight-free copy (which a counter needs for shapes). Both are
given relative to ``onnx.load``, so the figure can be read against what is possible at all.
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import onnx

from bench.figure import Figure
from collector.flops import count_model
from collector.flops.graphview import GraphView
from collector.flops.inputs import resolve_inputs
from collector.flops.shapes import light_models
from shared.errors import FlopgapError
from tests.test_corpus_backend import FOLDERS
from tests.test_flops_builders import encoder

CASES = (("light", 36, 96, 4, 128, 384), ("heavy, 255 MB", 36, 384, 8, 128, 1536))


def _best(fn: Callable[[], object], runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _read_nodes(path: Path) -> int:
    """The floor: onnx.load, then read each node's fields once in Python, nothing else."""
    seen = 0
    for node in onnx.load(path).graph.node:
        seen += len(node.op_type) + len(node.domain) + len(node.name)
        seen += len(list(node.input)) + len(list(node.output))
        seen += sum(len(a.name) for a in node.attribute)
    return seen


def _infer_seconds(path: Path) -> float:
    """ONNX C++ shape inference (with data propagation) on the weight-free copy of the model."""
    proto = onnx.load(path, load_external_data=False)
    light = light_models(proto, resolve_inputs(proto.graph, None), GraphView.read(proto.graph))[1]
    return _best(partial(onnx.shape_inference.infer_shapes, light, True, True, True))


def _onnx_tool_seconds(path: Path) -> float | None:
    try:
        import onnx_tool
    except ImportError:
        return None

    def profile() -> None:
        model = onnx_tool.Model(str(path))
        model.graph.shape_infer()
        model.graph.profile()

    try:
        return _best(profile, runs=2)
    except Exception:  # onnx-tool fails on some graphs; the figure then says so
        return None


def _figure(label: str, path: Path, nodes: int) -> Figure:
    count_model(path)  # warm-up: onnx loads its op schemas once
    load = _best(partial(onnx.load, path))
    count = _best(partial(count_model, path))
    floor = _best(partial(_read_nodes, path))
    infer = _infer_seconds(path)
    tool = _onnx_tool_seconds(path)
    tool_text = f"onnx-tool {tool * 1e3:.0f} ms" if tool else "onnx-tool not installed"
    detail = (
        f"{nodes} nodes, {path.stat().st_size / 1e6:.0f} MB: onnx.load {load * 1e3:.1f} ms, "
        f"count_model {count * 1e3:.1f} ms; floor: onnx.load + reading each node in Python "
        f"{floor * 1e3:.1f} ms ({floor / load:.2f}x), + ONNX C++ shape inference "
        f"{infer * 1e3:.1f} ms ({(floor + infer) / load:.2f}x); {tool_text}"
    )
    return Figure(f"FLOPs counting / onnx.load ({label})", count / load, 1.5, True, detail)


def _corpus_figure() -> Figure | None:
    """Seconds to count every graph the onnx wheel ships for its backend tests (issue: the
    corpus test stays under a minute), the same pass tests/test_corpus_backend.py makes."""
    data = Path(onnx.__file__).resolve().parent / "backend" / "test" / "data"
    paths = sorted(p for f in FOLDERS for p in (data / f).rglob("*.onnx"))
    if not paths:
        return None
    counted = 0
    start = time.perf_counter()
    for path in paths:
        try:
            count_model(path)
            counted += 1
        except FlopgapError:
            pass
    seconds = time.perf_counter() - start
    detail = f"{len(paths)} graphs of onnx {onnx.__version__}, {counted} counted"
    return Figure("onnx backend corpus count time, s", seconds, 60.0, True, detail)


def run() -> list[Figure]:
    figures = []
    corpus = _corpus_figure()
    if corpus is not None:
        figures.append(corpus)
    with tempfile.TemporaryDirectory() as tmp:
        for label, layers, width, heads, seq, ff in CASES:
            path = Path(tmp) / f"encoder_{label.split(',')[0]}.onnx"
            model = encoder(layers, width, heads, seq, ff)
            nodes = len(model.graph.node)
            onnx.save(model, path)
            del model
            figures.append(_figure(label, path, nodes))
    return figures
