"""The Python API: ``predict``, ``evaluate`` and ``sweep_errors``, on a store path or a Store.

From a notebook::

    from collector.predict import predict, evaluate
    p = predict("yolov8n.onnx", "rpi5-lab2", store="results.sqlite", threads=4)
    p.predicted_ms, p.interval_ms, p.flops_only_ms
    evaluate("results.sqlite", "rpi5-lab2", threads=4).summary
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from collector.predict import dataset
from collector.predict.context import Context, predict_in
from collector.predict.evaluate import Evaluation, run_evaluation
from collector.predict.families import is_sweep
from collector.predict.kernels import train_kernels
from collector.predict.model import apportioned
from collector.predict.whole import Prediction
from collector.store import Store
from collector.store.location import may_exist
from shared.errors import UsageError
from shared.input_values import InputValue

StoreLike = Store | str | Path


@contextmanager
def _opened(store: StoreLike) -> Iterator[tuple[Store, Path]]:
    if isinstance(store, Store):
        yield store, Path(store.path)
        return
    path = Path(store)
    if not may_exist(store):
        raise UsageError(f"no database at {path}", hint="pass the --db that `flopgap serve` used")
    opened = Store(store)
    try:
        yield opened, path
    finally:
        opened.close()


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
            oof = train_kernels(apportioned(pd.DataFrame(rows), sweeps)).oof  # as trained
            if oof is None:
                continue
            oof = oof[oof["oof_us"].notna()]
            sums = oof.groupby("model")[["oof_us", "kernel_time_us"]].sum(min_count=1)
            for model, row in sums.iterrows():
                if np.isfinite(row["oof_us"]) and row["oof_us"] > 0:
                    err = abs(float(np.log(row["oof_us"] / row["kernel_time_us"])))
                    errors[str(model)] = max(errors.get(str(model), 0.0), err)
    return errors
