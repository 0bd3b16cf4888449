"""The predictor's speed (issue 18): predicting a ~2,000-node model once its optimised graph is
cached (target <= 1 s), and training the kernel regressors on 2,000 kernel samples with their
out-of-fold pass, as the store's training does (target <= 30 s).

The samples are real: sweep kernels of every family (``collector.sweep``) profiled on this
machine by the agent's own per-op pass (``agent.engine.profile_ops``, 1 thread, opt level all,
a few runs each) and turned into feature rows by ``collector.predict.features.kernel_rows``,
the path a stored profile takes. Profiling 2,000 rows takes minutes, so the rows are cached as
JSON under ``~/.cache/flopgap/bench-predict/`` (keyed by onnxruntime and feature version) and
a second run reuses them; the output says which.

The 2,000-node model is a chain of MatMul -> Tanh -> LayerNormalization -> Softmax -> Mul
blocks whose widths cycle through distinct values: none of these pairs is one ORT fuses at
opt level all, so the optimised graph keeps about as many nodes as the model has (the figure
gives both counts).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd

from bench.figure import Figure
from collector.predict.context import Context, predict_in
from collector.predict.correction import IDENTITY
from collector.predict.dataset import DeviceKey
from collector.predict.features import FEATURE_VERSION, kernel_rows
from collector.predict.kernels import train_kernels
from collector.predict.model import Predictor
from collector.zoo._builder import GraphBuilder

CACHE = Path.home() / ".cache" / "flopgap" / "bench-predict"
SAMPLES = 2000
BLOCKS = 400  # x 5 nodes
CALLS = 7
PER_ROUND = 8  # sweep samples per family per round
WIDTHS = (24, 32, 40, 48, 56, 64, 72, 80)
TOKENS = 8


class BenchContext(Context):
    """A read context without a store: the bench passes its own predictor to predict_in."""

    def __init__(self, db: Path, key: DeviceKey) -> None:
        self.db, self.key = db, key
        self.models_dir = db.parent / "models"
        self.measured = []
        self.progress = None
        self._predictor = None


def _key() -> DeviceKey:
    return DeviceKey("bench", ort.__version__, 1, "CPUExecutionProvider", "all")


def chain_model(blocks: int, seed: int = 0) -> onnx.ModelProto:
    """``blocks`` x (MatMul, Tanh, LayerNormalization, Softmax, Mul), input [TOKENS, 24]."""
    b = GraphBuilder(np.random.default_rng(seed))
    x, width = "x", WIDTHS[0]
    for index in range(blocks):
        out = WIDTHS[(index * 3 + 1) % len(WIDTHS)]
        x = b.op("MatMul", [x, b.weight("w", (width, out), fan_in=width)])
        x = b.op("Tanh", [x])
        scale = b.const("ln_scale", np.ones(out, np.float32))
        x = b.op("LayerNormalization", [x, scale, b.bias("ln_bias", out)], axis=-1)
        x = b.op("Softmax", [x], axis=-1)
        last = index == blocks - 1
        x = b.op("Mul", [x, b.scalar(float(out))], out="y" if last else None)
        width = out
    inputs: dict[str, Sequence[int]] = {"x": (TOKENS, WIDTHS[0])}
    return b.finish("chain", "predict-speed chain", inputs, {"y": (TOKENS, width)})


def _profile_rows(sample: Any, work: Path) -> list[dict[str, Any]]:
    """Feature rows of one sweep kernel, profiled by the agent's per-op pass."""
    from agent.engine.profile_ops import profile_ops
    from agent.engine.session import SessionSettings
    from collector.sweep.families import build_model

    path = work / f"{sample.id}.onnx"
    onnx.save(build_model(sample), path)
    shapes = {name: tuple(int(d) for d in dims) for name, dims in sample.inputs.items()}
    settings = SessionSettings(threads=1, opt_level="all")
    prof = profile_ops(path, settings, shapes, work, runs=3, warmup_runs=1)
    graph = onnx.load(str(prof.optimized_model), load_external_data=False).graph
    rows = [r for r in kernel_rows(graph, prof.document["nodes"])
            if r["kernel_time_us"] is not None and r["kernel_time_us"] > 0]  # fmt: skip
    for file in work.iterdir():
        file.unlink()
    return [{**r, "result_id": sample.id, "model": sample.id} for r in rows]


def kernel_samples(target: int, cache: Path) -> tuple[pd.DataFrame, str]:
    """At least `target` real kernel rows, and how they were made; rounds of sweep samples
    over every family are profiled until there are enough, each round saved as it ends."""
    from collector.sweep import FAMILIES, sample_family

    cache.mkdir(parents=True, exist_ok=True)
    saved = cache / f"rows-ort{ort.__version__}-features{FEATURE_VERSION}.json"
    doc: dict[str, Any] = json.loads(saved.read_text()) if saved.is_file() else {}
    rows: list[dict[str, Any]] = doc.get("rows", [])
    done: set[str] = set(doc.get("samples", []))
    had, start, seed = len(rows), time.perf_counter(), int(doc.get("next_seed", 0))
    with tempfile.TemporaryDirectory() as tmp:
        while len(rows) < target:
            for name in FAMILIES:
                for sample in sample_family(name, PER_ROUND, seed=seed):
                    if sample.id not in done:
                        rows += _profile_rows(sample, Path(tmp))
                        done.add(sample.id)
            seed += 1
            state = {"rows": rows, "samples": sorted(done), "next_seed": seed}
            partial = saved.with_suffix(".partial")
            partial.write_text(json.dumps(state))
            partial.replace(saved)
    made = (
        f"{len(rows) - had} rows profiled now in {time.perf_counter() - start:.0f} s"
        if len(rows) > had else "all cached"
    )  # fmt: skip
    how = (
        f"{len(rows)} real kernel rows from {len(done)} sweep kernels of {len(FAMILIES)} "
        f"families, agent per-op profile at 1 thread, 3 runs each ({made}; cache {saved})"
    )
    return pd.DataFrame(rows), how


def train_figure(frame: pd.DataFrame, samples: int, how: str) -> tuple[Figure, Predictor]:
    """Seconds to train on the first `samples` rows, out-of-fold pass included."""
    chosen = frame.head(samples).reset_index(drop=True)
    start = time.perf_counter()
    kernels = train_kernels(chosen, with_oof=True)
    seconds = time.perf_counter() - start
    predictor = Predictor(
        key=_key(), kernels=kernels, correction=IDENTITY, data_hash="bench", samples=len(chosen),
        models=int(chosen["result_id"].nunique()), families=sorted(set(chosen["family"])),
        trained_at=time.time(),
    )  # fmt: skip
    detail = (f"train_kernels with out-of-fold pass on {len(chosen)} samples of "
              f"{chosen['family'].nunique()} kernel families: {seconds:.2f} s; {how}")  # fmt: skip
    return Figure("predictor training on 2,000 kernel samples, s", seconds, 30.0, True,
                  detail), predictor  # fmt: skip


def predict_figure(predictor: Predictor, blocks: int, calls: int, folder: Path) -> Figure:
    """Median seconds of a prediction once the optimised graph is cached."""
    model = folder / "chain.onnx"
    proto = chain_model(blocks)
    onnx.save(proto, model)
    ctx = BenchContext(folder / "bench.sqlite", _key())
    start = time.perf_counter()
    first = predict_in(ctx, model, predictor=predictor)
    cold = time.perf_counter() - start
    times: list[float] = []
    for _ in range(calls):
        start = time.perf_counter()
        predict_in(ctx, model, predictor=predictor)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    detail = (f"{len(proto.graph.node)} nodes in the model, {len(first.kernels)} fused nodes "
              f"predicted; first call (optimise + size + FLOPs, then cached) {cold:.2f} s; "
              f"median of {calls} cached calls {median * 1e3:.0f} ms "
              f"(min {min(times) * 1e3:.0f}, max {max(times) * 1e3:.0f})")  # fmt: skip
    return Figure("predict a 2,000-node model (graph cached), s", median, 1.0, True, detail)


def run(
    samples: int = SAMPLES, blocks: int = BLOCKS, calls: int = CALLS, cache: Path | None = None
) -> list[Figure]:
    frame, how = kernel_samples(samples, CACHE if cache is None else cache)
    training, predictor = train_figure(frame, samples, how)
    with tempfile.TemporaryDirectory() as tmp:
        predicting = predict_figure(predictor, blocks, calls, Path(tmp))
    return [predicting, training]
