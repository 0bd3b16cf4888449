"""Leave-one-model-family-out: how well the predictor does on families it never saw.

For each family of whole models the store holds for a device key, a predictor is trained on
every valid result whose model is of another family (``train_on="sweeps"``: on sweep kernels
only, so no whole model ever trains), then each held-out model is predicted through the same
path as `flopgap predict` (optimized on the collector, every fused node predicted, summed,
corrected) and compared with its measured p50 (the median over its valid results). The
FLOPs-only fit is scored the same way: fitted on the other families' whole models, never on
the one it predicts. A fold's training families are recorded with it, and a model is never
scored by a predictor whose families include its own (``Fold.check`` raises if it were).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from collector.predict.context import Context, predict_in
from collector.predict.families import is_sweep
from collector.predict.model import FOLDS_SLOT, Predictor, current, training_hash
from collector.predict.whole import flops_fit
from collector.report.stats import spearman

MISS = 0.10


@dataclass
class Scored:
    """One held-out model: measured, predicted, FLOPs-only, and their relative errors."""

    model: str
    family: str
    measured_ms: float
    predicted_ms: float | None
    interval_ms: tuple[float, float] | None
    flops_only_ms: float | None
    error: float | None  # predicted / measured - 1
    flops_error: float | None
    results: int  # valid results the measured p50 is the median of
    missing: list[str] = field(default_factory=list)  # op types predicted by the pooled model
    note: str = ""


@dataclass
class Fold:
    """One held-out family and the families its predictor was trained on."""

    held_out: str
    trained_on: list[str]
    samples: int

    def check(self, family: str) -> None:
        """Refuse to score a model whose family was in this fold's training data."""
        if family in self.trained_on:
            raise AssertionError(f"{family} is in the training families of fold {self.held_out}")


@dataclass
class Evaluation:
    device: str
    train_on: str
    scored: list[Scored]
    folds: list[Fold]
    summary: dict[str, dict[str, float | int | None]]

    def misses(self, threshold: float = MISS) -> list[Scored]:
        """Models the kernel predictor missed by more than `threshold`, worst first."""
        bad = [s for s in self.scored if s.error is None or abs(s.error) > threshold]
        return sorted(bad, key=lambda s: -abs(s.error) if s.error is not None else -math.inf)

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "train_on": self.train_on,
            "summary": self.summary,
            "models": [asdict(s) for s in self.scored],
            "folds": [asdict(f) for f in self.folds],
            "misses": [s.model for s in self.misses()],
        }


def summarize(errors: Sequence[float | None], measured: Sequence[float],
              predicted: Sequence[float | None]) -> dict[str, float | int | None]:  # fmt: skip
    """Within ±10 % and ±5 %, MAPE, RMSPE and Spearman of one method over the scored models."""
    pairs = [(e, m, p) for e, m, p in zip(errors, measured, predicted, strict=True)
             if e is not None and p is not None]  # fmt: skip
    if not pairs:
        return {"models": 0, "within_10": None, "within_5": None, "mape": None, "rmspe": None,
                "spearman": None}  # fmt: skip
    err = np.array([abs(e) for e, _, _ in pairs])
    return {
        "models": len(pairs),
        "within_10": float(np.mean(err <= 0.10)),
        "within_5": float(np.mean(err <= 0.05)),
        "mape": float(np.mean(err)),
        "rmspe": float(np.sqrt(np.mean(err**2))),
        "spearman": spearman([m for _, m, _ in pairs], [p for _, _, p in pairs]),
    }


def run_evaluation(ctx: Context, train_on: str, include_sweeps: bool) -> Evaluation:
    """Score every whole model of `ctx`'s device key, one held-out family at a time."""
    if train_on not in ("all", "sweeps"):
        raise ValueError(f"train_on is 'all' or 'sweeps', not {train_on!r}")
    by_sha: dict[str, list[Any]] = {}
    for m in ctx.measured:
        if include_sweeps or not is_sweep(m.family):
            by_sha.setdefault(m.model_sha256, []).append(m)
    families = sorted({runs[0].family for runs in by_sha.values()})
    scored: list[Scored] = []
    folds: list[Fold] = []
    trained: dict[str, Predictor] = {}
    for fam in families:
        pool = [m for m in ctx.measured if m.family != fam
                and (train_on == "all" or is_sweep(m.family))]  # fmt: skip
        fold_key = training_hash(pool)
        if ctx.progress is not None:
            ctx.progress(f"fold {fam}: {len(pool)} results to learn from")
        predictor = trained.get(fold_key)
        if predictor is None and any(m.profile for m in pool):
            predictor = trained[fold_key] = current(
                ctx.store, ctx.key, pool, ctx.models_dir, slot=FOLDS_SLOT
            )
        fold = Fold(fam, sorted({m.family for m in pool if m.profile}),
                    predictor.samples if predictor else 0)  # fmt: skip
        folds.append(fold)
        fit = flops_fit(ctx.flops_points(exclude_family=fam))
        for runs in (r for r in by_sha.values() if r[0].family == fam):
            fold.check(fam)
            scored.append(_score(ctx, runs, predictor, fit))
    kept = {p.data_hash for p in trained.values()}
    if kept:
        ctx.store.drop_predictors(ctx.key.text() + FOLDS_SLOT, kept)
    inside = [s.interval_ms[0] <= s.measured_ms <= s.interval_ms[1]
              for s in scored if s.interval_ms is not None]  # fmt: skip
    summary = {
        "kernel": {
            **summarize([s.error for s in scored], [s.measured_ms for s in scored],
                        [s.predicted_ms for s in scored]),
            "interval_coverage": sum(inside) / len(inside) if inside else None,
        },
        "flops_only": summarize([s.flops_error for s in scored], [s.measured_ms for s in scored],
                                [s.flops_only_ms for s in scored]),
    }  # fmt: skip
    return Evaluation(ctx.key.label(), train_on, scored, folds, summary)


def _score(ctx: Context, runs: Sequence[Any], predictor: Predictor | None, fit: Any) -> Scored:
    from shared.errors import FlopgapError

    first = runs[0]
    measured = statistics.median(m.p50_us for m in runs) / 1000
    flops_ms = fit.predict(float(first.flops)) if fit is not None and first.flops else None
    base = Scored(first.model_name, first.family, measured, None, None, flops_ms, None,
                  _rel(flops_ms, measured), len(runs))  # fmt: skip
    if predictor is None:
        base.note = "no profiled results outside this family to train on"
        return base
    try:
        model = Path(ctx.models_dir / f"{first.model_sha256}.onnx")
        pred = predict_in(
            ctx, model, first.input_shapes, first.input_values or None, predictor, first.model_name
        )
    except FlopgapError as exc:
        base.note = f"not predicted: {exc}"
        return base
    base.predicted_ms, base.interval_ms = pred.predicted_ms, pred.interval_ms
    base.error = _rel(pred.predicted_ms, measured)
    base.missing = [m["op_type"] for m in pred.missing]
    return base


def _rel(predicted: float | None, measured: float) -> float | None:
    return None if predicted is None or measured <= 0 else predicted / measured - 1
