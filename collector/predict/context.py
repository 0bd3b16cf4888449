"""The read context every prediction shares: one device key's data, read once.

``Context`` holds a device key's measured models and its current predictor (trained and
stored on first use); ``predict_in`` predicts one model file within it. `flopgap predict`,
evaluation and the report all go through here, so a number means the same in each.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import onnx

from collector.predict import dataset
from collector.predict.dataset import DeviceKey, Measured
from collector.predict.families import is_sweep
from collector.predict.model import Predictor, current
from collector.predict.whole import Prediction, flops_fit, predict_nodes
from collector.store import Store
from collector.store.rows import ResultRow
from shared.input_values import InputValue


def models_folder(db: Path) -> Path:
    """Where `flopgap serve` keeps the model files of database `db`."""
    from collector.server.serve import models_folder as folder

    return folder(db)


def cache_folder(db: Path) -> Path:
    """Where predictions keep the optimized graphs they made: beside the database."""
    return db.with_name(db.name + ".predict-cache")


class Context:
    """One device key's data, read once: its measured models and its current predictor."""

    def __init__(
        self, store: Store, db: Path, device: str | DeviceKey, threads: int | None = None,
        progress: Callable[[str], None] | None = None, rows: Sequence[ResultRow] | None = None,
    ) -> None:  # fmt: skip
        """`device` is what a user typed (resolved with `threads`), or a key known exactly
        (the report's); `rows` are the store's result rows when the caller read them."""
        self.store, self.db = store, db
        self.models_dir = models_folder(db)
        rows = store.result_rows() if rows is None else rows
        self.key: DeviceKey = (
            device if isinstance(device, DeviceKey) else dataset.resolve(rows, device, threads)
        )
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
