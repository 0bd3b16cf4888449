"""``flopgap report --predict``: unmeasured models ranked on every device that has a predictor.

Why in the report: a user choosing a model asks which of several candidates is fastest on each
board of the fleet; the report already knows the fleet's device keys, so each candidate is
predicted on each of them (the device's current predictor, trained on everything it measured,
since none of these models was measured) and ranked fastest first per device. A model that
cannot be predicted on a device keeps its row with a note, never stops the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from shared.errors import FlopgapError, UsageError
from shared.input_values import InputValue

PREDICTED_COLUMNS = ("model", "device", "predicted_ms", "lo_ms", "hi_ms", "flops_only_ms",
                     "rank", "missing", "note")  # fmt: skip


@dataclass(frozen=True)
class PredictRequest:
    """One unmeasured model to rank, with the inputs `flopgap predict` would take."""

    path: Path
    input_shapes: Mapping[str, Sequence[int]] = field(default_factory=dict)
    input_values: Mapping[str, InputValue] = field(default_factory=dict)


def empty() -> pd.DataFrame:
    return pd.DataFrame(columns=list(PREDICTED_COLUMNS))


def rank_models(
    requests: Sequence[PredictRequest], contexts: Iterable[tuple[str, Any]]
) -> tuple[pd.DataFrame, list[str]]:
    """One row per (model, device with a predictor), ranked per device; what was missing."""
    from collector.predict.context import predict_in

    for request in requests:
        if not request.path.is_file():
            raise UsageError(f"--predict {request.path}: no such file", "pass an .onnx file")
    rows: list[dict[str, Any]] = []
    lacking: list[str] = []
    chosen = list(contexts)
    if not chosen:
        lacking.append("--predict: no device of this report has per-op profiles to predict from")
        return empty(), lacking
    for device, ctx in chosen:
        for request in requests:
            row: dict[str, Any] = dict.fromkeys(PREDICTED_COLUMNS)
            row.update(model=request.path.stem, device=device, note="")
            try:
                p = predict_in(ctx, request.path, request.input_shapes or None,
                               request.input_values or None)  # fmt: skip
            except FlopgapError as exc:
                row["note"] = f"not predicted: {exc}"
            else:
                row.update(predicted_ms=p.predicted_ms, lo_ms=p.interval_ms[0],
                           hi_ms=p.interval_ms[1], flops_only_ms=p.flops_only_ms,
                           missing=", ".join(m["op_type"] for m in p.missing))  # fmt: skip
            rows.append(row)
    table = pd.DataFrame(rows, columns=list(PREDICTED_COLUMNS))
    table["predicted_ms"] = pd.to_numeric(table["predicted_ms"], errors="coerce")
    table["rank"] = table.groupby("device")["predicted_ms"].rank(method="min").astype("Int64")
    table = table.sort_values(["device", "rank"], na_position="last", kind="stable")
    return table.reset_index(drop=True), lacking
