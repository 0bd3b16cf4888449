"""The Python API: ``predict``, ``evaluate`` and ``sweep_errors``, on a store path or a Store.

From a notebook::

    from collector.predict import predict, evaluate
    p = predict("yolov8n.onnx", "rpi5-lab2", store="results.sqlite", threads=4)
    p.predicted_ms, p.interval_ms, p.flops_only_ms
    evaluate("results.sqlite", "rpi5-lab2", threads=4).summary
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from collector.predict import dataset
from collector.predict.dataset import DeviceKey, Measured
from collector.predict.evaluate import Evaluation, run_evaluation
from collector.predict.families import is_sweep
from collector.predict.kernels import train_kernels
from collector.predict.model import Predictor, current
from collector.predict.whole import Prediction, flops_fit, predict_nodes
from collector.store import Store
from shared.errors import UsageError
from shared.input_values import InputValue

StoreLike = Store | str | Path


def models_folder(db: Path) -> Path:
    """Where `flopgap serve` keeps the model files of database `db`."""
    from collector.server.serve import models_folder as folder

    return folder(db)


def cache_folder(db: Path) -> Path:
    """Where predictions keep the optimized graphs they made: beside the database."""
    return db.with_name(db.name + ".predict-cache")


@contextmanager
def _opened(store: StoreLike) -> Iterator[tuple[Store, Path]]:
    if isinstance(store, Store):
        yield store, Path(store.path)
        return
    path = Path(store)
    if not path.is_file():
        raise UsageError(f"no database at {path}", hint="pass the --db that `flopgap serve` used")
    opened = Store(path)
    try:
        yield opened, path
    finally:
        opened.close()


class Context:
    """One device key's data, read once: its measured models and its current predictor."""

    def __init__(
        self, store: Store, db: Path, device: str, threads: int | None,
        progress: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        self.store, self.db = store, db
        self.models_dir = models_folder(db)
        rows = store.result_rows()
        self.key: DeviceKey = dataset.resolve(rows, device, threads)
        self.measured: list[Measured] = dataset.measured(store, rows, self.key, self.models_dir)
        self.progress = progress
        self._predictor: Predictor | None = None

    @property
    def predictor(self) -> Predictor:
        if self._predictor is None:
            self._predictor = current(
                self.store, self.key, self.measured, self.models_dir, self.progress
            )
        return self._predictor

    def flops_points(self, exclude_family: str | None = None) -> list[tuple[float, float]]:
        """(FLOPs, p50 ms) of the device's whole models (sweep kernels only when it has fewer
        than three others), for the FLOPs-only fit."""
        whole = [m for m in self.measured if not is_sweep(m.family) and m.family != exclude_family]
        if len([m for m in whole if m.flops]) < 3:
            whole = [m for m in self.measured if m.family != exclude_family]
        return [(float(m.flops), m.p50_us / 1000) for m in whole if m.flops]


def predict(
    model: str | Path,
    device: str,
    *,
    store: StoreLike,
    threads: int | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    input_values: Mapping[str, InputValue] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Prediction:
    """Predicted p50 of `model` on `device` (agent name, hostname or device id) at `threads`."""
    with _opened(store) as (opened, db):
        ctx = Context(opened, db, device, threads, progress)
        return predict_in(ctx, Path(model), input_shapes, input_values)


NCHWC = "com.microsoft.nchwc."


def predict_in(
    ctx: Context,
    model: Path,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    input_values: Mapping[str, InputValue] | None = None,
    predictor: Predictor | None = None,
    name: str | None = None,
) -> Prediction:
    """Predict one model within a read context (the CLI, the report and evaluation share it).

    The graph is made as the device's onnxruntime makes it: ORT blocks convolutions into
    NCHWc only on some CPUs (x86 with AVX2 or AVX-512), so when none of the device's own
    profiles ran an NCHWc kernel, this collector's onnxruntime is told not to either."""
    from collector.predict.optimize import optimize_for_device

    chosen = predictor or ctx.predictor
    blocks = any(f.startswith(NCHWC) for f in chosen.kernels.families)
    graph = optimize_for_device(
        model,
        opt_level=ctx.key.opt_level,
        provider=ctx.key.provider,
        input_shapes=input_shapes,
        input_values=input_values,
        device_onnxruntime=ctx.key.onnxruntime,
        disabled_optimizers=() if blocks else ("NchwcTransformer",),
        cache_dir=cache_folder(ctx.db),
    )
    proto = onnx.load(str(graph.path), load_external_data=False).graph
    p50, interval, kernels, missing, kernel_sum = predict_nodes(chosen, proto, graph.nodes)
    flops = _flops(model, graph.path.parent, graph.input_shapes, input_values)
    fit = flops_fit(ctx.flops_points())
    return Prediction(
        model=name or model.stem,
        device=ctx.key.label(),
        predicted_ms=p50,
        interval_ms=interval,
        flops_only_ms=fit.predict(flops) if fit is not None and flops else None,
        flops=flops,
        kernels=kernels,
        missing=missing,
        predictor=chosen.describe(),
        kernel_sum_ms=kernel_sum,
        notes=list(graph.notes),
    )


def _flops(
    model: Path, cache: Path, shapes: Mapping[str, Sequence[int]],
    values: Mapping[str, InputValue] | None,
) -> int | None:  # fmt: skip
    """The model's FLOPs at these inputs, counted once per optimized-graph cache entry."""
    from collector.flops import count_model
    from shared.errors import FlopgapError

    saved = cache / "flops.json"
    if saved.is_file():
        value = json.loads(saved.read_text())["flops"]
        return None if value is None else int(value)
    try:
        flops: int | None = count_model(model, shapes, input_values=values or None).total.flops
    except FlopgapError:
        flops = None
    tmp = saved.with_suffix(".partial")
    tmp.write_text(json.dumps({"flops": flops}))
    tmp.replace(saved)
    return flops


def evaluate(
    store: StoreLike,
    device: str,
    *,
    threads: int | None = None,
    train_on: str = "all",
    include_sweeps: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """Leave-one-model-family-out scores of the kernel predictor and the FLOPs-only fit."""
    with _opened(store) as (opened, db):
        ctx = Context(opened, db, device, threads, progress)
        return run_evaluation(ctx, train_on, include_sweeps)


def sweep_errors(
    db_path: Path, agents: Sequence[str], threads: int, samples: Sequence[Any]
) -> dict[str, float]:
    """Each measured sweep kernel's out-of-fold error, |ln(predicted / measured)| of its summed
    kernel times, worst over `agents`: where adaptive sampling adds samples."""
    wanted = {s.id for s in samples}
    errors: dict[str, float] = {}
    with _opened(db_path) as (opened, db):
        for agent in agents:
            try:
                ctx = Context(opened, db, agent, threads)
            except UsageError:
                continue  # this agent has nothing valid at these threads yet
            sweeps = [m for m in ctx.measured if is_sweep(m.family) and m.model_name in wanted]
            rows = dataset.kernel_samples(sweeps, ctx.models_dir)
            if not rows:
                continue
            oof = train_kernels(pd.DataFrame(rows)).oof
            if oof is None:
                continue
            oof = oof[oof["oof_us"].notna()]
            sums = oof.groupby("model")[["oof_us", "kernel_time_us"]].sum(min_count=1)
            for model, row in sums.iterrows():
                if np.isfinite(row["oof_us"]) and row["oof_us"] > 0:
                    err = abs(float(np.log(row["oof_us"] / row["kernel_time_us"])))
                    errors[str(model)] = max(errors.get(str(model), 0.0), err)
    return errors
