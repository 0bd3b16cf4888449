"""FLOPs counting time against `onnx.load` time of the same 2,000+-node model (target <= 1.5),
and against onnx-tool's profile of it when onnx-tool is installed.

Two BERT-style encoders of 2,161 nodes, one light (small width: parsing is cheap, so the
per-node Python cost of counting dominates) and one heavy (255 MB of weights, as a real model
of that size has). Times are the best of five, interleaved, after one warm-up count.
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


def run() -> list[Figure]:
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, layers, width, heads, seq, ff in CASES:
            path = Path(tmp) / f"encoder_{label.split(',')[0]}.onnx"
            model = encoder(layers, width, heads, seq, ff)
            nodes = len(model.graph.node)
            onnx.save(model, path)
            del model
            count_model(path)  # warm-up: onnx loads its op schemas once
            load = _best(partial(onnx.load, path))
            count = _best(partial(count_model, path))
            tool = _onnx_tool_seconds(path)
            tool_text = f"onnx-tool {tool * 1e3:.0f} ms" if tool else "onnx-tool not installed"
            detail = (
                f"{nodes} nodes, {path.stat().st_size / 1e6:.0f} MB: onnx.load "
                f"{load * 1e3:.1f} ms, count_model {count * 1e3:.1f} ms; {tool_text}"
            )
            figures.append(Figure(f"FLOPs counting / onnx.load ({label})", count / load, 1.5,
                                  True, detail))  # fmt: skip
    return figures
