"""A whole model's predicted latency: each fused node predicted, summed, corrected.

The interval is a 90 % one, from the errors the predictor showed out of fold: each kernel
family's spread, weighted by its share of the predicted time and taken as fully correlated
within a family (one family's bias moves all its kernels together) and independent across
families, plus the correction's own spread over the device's models. A kernel whose family
had no training data of its own is predicted by the pooled model and listed in ``missing``,
so the number never hides what it guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import onnx
import pandas as pd

from collector.predict.features import kernel_rows
from collector.predict.model import Predictor
from collector.report.stats import PowerFit, power_law_fit

Z90 = 1.645


@dataclass(frozen=True)
class KernelPrediction:
    """One fused node's predicted time, and what predicted it (``family`` or ``pooled``)."""

    node: str
    op_type: str
    predicted_ms: float
    basis: str
    share: float


@dataclass
class Prediction:
    """What `flopgap predict` prints; ``to_json`` is its documented JSON."""

    model: str
    device: str
    predicted_ms: float
    interval_ms: tuple[float, float]
    flops_only_ms: float | None
    flops: int | None
    kernels: list[KernelPrediction]
    missing: list[dict[str, Any]]
    predictor: dict[str, Any]
    kernel_sum_ms: float
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device,
            "predicted_ms": self.predicted_ms,
            "interval_ms": list(self.interval_ms),
            "flops_only_ms": self.flops_only_ms,
            "flops": self.flops,
            "kernel_sum_ms": self.kernel_sum_ms,
            "kernels": [asdict(k) for k in self.kernels],
            "missing": self.missing,
            "predictor": self.predictor,
            "notes": self.notes,
        }


def predict_nodes(
    predictor: Predictor, graph: onnx.GraphProto, entries: Sequence[Mapping[str, Any]]
) -> tuple[float, tuple[float, float], list[KernelPrediction], list[dict[str, Any]], float]:
    """(p50 ms, interval ms, kernels, missing families, kernel sum ms) of a graph whose nodes
    are sized by `entries` (a profile, or the collector's sized node list)."""
    frame = pd.DataFrame(kernel_rows(graph, entries))
    if frame.empty:
        return 0.0, (0.0, 0.0), [], [], 0.0
    pred_us, basis = predictor.kernels.predict(frame)
    pred_us = cold_weight_floor(predictor, frame, pred_us)
    total = float(pred_us.sum())
    p50_us = predictor.correction.apply(total, len(frame))
    shares = pred_us / total if total > 0 else pred_us * 0
    frame = frame.assign(pred=pred_us, share=shares, basis=basis)
    var = predictor.correction.sigma**2
    for fam, group in frame.groupby("family"):
        var += (float(group["share"].sum()) * predictor.kernels.sigma(str(fam))) ** 2
    spread = math.exp(Z90 * math.sqrt(var))
    kernels = [
        KernelPrediction(str(r.node), str(r.family), float(r.pred) / 1000, str(r.basis),
                         float(r.share))
        for r in frame.itertuples()
    ]  # fmt: skip
    missing = [
        {"op_type": str(fam), "kernels": len(g), "predicted_ms": float(g["pred"].sum()) / 1000,
         "share": float(g["share"].sum()),
         "why": "no training data of its own: predicted by the pooled model of all kernels"}
        for fam, g in frame[frame["basis"] == "pooled"].groupby("family")
    ]  # fmt: skip
    p50 = p50_us / 1000
    return p50, (p50 / spread, p50 * spread), kernels, missing, total / 1000


def cold_weight_floor(predictor: Predictor, frame: pd.DataFrame, pred_us: Any) -> Any:
    """No kernel of a model whose weights outgrow the L2 cache is faster than reading its
    weights from DRAM at the device's calibrated bandwidth.

    Why: a sweep measures each kernel alone, run after run, so its weights stay in cache; in
    a whole model the other layers evict them between inferences. A fully-connected layer at
    batch 1 reads each weight once, and measured (MobileNet's 5 MB classifier at 48 GB/s on a
    45 GB/s board) it runs at DRAM speed, twice the time its hot sweep twin predicts."""
    cal = predictor.calibration
    weights = frame["weight_bytes"].to_numpy(float) if "weight_bytes" in frame else None
    if not cal or weights is None or weights.sum() <= cal["l2_bytes"]:
        return pred_us
    return np.maximum(pred_us, weights / (cal["bandwidth_gbs"] * 1e3))


def flops_fit(points: Sequence[tuple[float, float]]) -> PowerFit | None:
    """The per-device log-log fit of p50 (ms) on FLOPs over (flops, p50 ms) points."""
    usable = [(f, p) for f, p in points if f and f > 0 and p > 0]
    return power_law_fit([f for f, _ in usable], [p for _, p in usable])
