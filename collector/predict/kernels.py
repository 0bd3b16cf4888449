"""One regressor per kernel family as ORT executes it, and a pooled one for the rest.

Each family's model has two layers:

1. a **base** ``t = a + b·MACs + c·bytes`` (µs, non-negative, fitted for relative error): a
   fixed cost plus a compute and a memory term, the roofline's shape. It is what carries a
   prediction beyond the sizes the sweep measured (a tree cannot extrapolate; a line can);
2. a **LightGBM booster** on ``ln(t / base)`` over every feature (kernel size, stride, groups,
   layout, activation ...): the efficiency the base cannot see (a depthwise 3x3 is slower per
   MAC than a dense 1x1), bounded by what was measured.

Why LightGBM: fast on a few thousand rows, handles missing features natively, and saves a
model as text (``model_to_string``), so a stored predictor is data, never a pickle.

A family with fewer than MIN_OWN samples has no model of its own: its kernels are predicted
by the pooled model (every family's samples), and named as such in every prediction.
Out-of-fold predictions (grouped by result, so one model's kernels never score each other)
give each family's error spread, which the whole-model interval and adaptive sampling read.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from collector.predict.features import FEATURES

MIN_OWN = 4  # samples before a family has a model of its own
MIN_BOOSTED = 24  # samples before a family's base gets a booster on top
FOLDS = 4
POOLED = "*"
_ROUNDS = 200
_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "max_bin": 63,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "min_data_in_bin": 1,
    "num_threads": 1,  # deterministic, and a collector's spare core is enough
    "deterministic": True,
    "seed": 0,
    "verbose": -1,
}


def _base_matrix(frame: pd.DataFrame) -> np.ndarray:
    macs = np.exp(frame["log_macs"].to_numpy(float)) * (frame["log_macs"].to_numpy(float) > 0)
    nbytes = np.exp(frame["log_bytes"].to_numpy(float)) * (frame["log_bytes"].to_numpy(float) > 0)
    return np.column_stack([np.ones(len(frame)), macs, nbytes])


def fit_base(frame: pd.DataFrame, times: np.ndarray) -> list[float]:
    """``[a, b, c]`` of t = a + b·MACs + c·bytes, all >= 0, minimising relative error."""
    from scipy.optimize import nnls

    x = _base_matrix(frame)
    scale = x.max(axis=0)
    scale[scale == 0] = 1.0
    weighted = (x / scale) / times[:, None]
    coef, _ = nnls(weighted, np.ones(len(times)))
    coef = coef / scale
    if not np.any(coef > 0):  # degenerate (one sample): the median time as a fixed cost
        coef = np.array([float(np.median(times)), 0.0, 0.0])
    return [float(c) for c in coef]


def base_us(base: Sequence[float], frame: pd.DataFrame) -> np.ndarray:
    """The base's time per row, floored at 0.1 µs so its log is finite."""
    return np.maximum(_base_matrix(frame) @ np.asarray(base, dtype=float), 0.1)


@dataclass
class FamilyModel:
    """One family's base, booster (LightGBM text, or None) and out-of-fold log-error spread."""

    family: str
    samples: int
    base: list[float]
    booster: str | None
    sigma: float
    _loaded: Any = field(default=None, repr=False, compare=False)

    def predict_us(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted kernel time (µs) of each row."""
        out = base_us(self.base, frame)
        if self.booster is not None:
            if self._loaded is None:
                import lightgbm as lgb

                self._loaded = lgb.Booster(model_str=self.booster)
            out = out * np.exp(self._loaded.predict(frame.loc[:, FEATURES].to_numpy(float)))
        return np.asarray(out, dtype=float)

    def to_json(self) -> dict[str, Any]:
        return {"family": self.family, "samples": self.samples, "base": self.base,
                "booster": self.booster, "sigma": self.sigma}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FamilyModel:
        return cls(str(data["family"]), int(data["samples"]), [float(c) for c in data["base"]],
                   data.get("booster"), float(data["sigma"]))  # fmt: skip


def fit_model(name: str, frame: pd.DataFrame) -> FamilyModel:
    """Fit one family's model (or the pooled one) on `frame`'s rows."""
    times = frame["kernel_time_us"].to_numpy(float)
    base = fit_base(frame, times)
    booster = None
    if len(frame) >= MIN_BOOSTED:
        import lightgbm as lgb

        target = np.log(times / base_us(base, frame))
        params = {**_PARAMS, "min_data_in_leaf": max(3, min(10, len(frame) // 12))}
        data = lgb.Dataset(frame.loc[:, FEATURES].to_numpy(float), target, free_raw_data=True)
        booster = lgb.train(params, data, num_boost_round=_ROUNDS).model_to_string()
    return FamilyModel(name, len(frame), base, booster, sigma=0.0)


def _folds(groups: np.ndarray, k: int) -> list[np.ndarray]:
    """Row masks of k folds that keep every group (result) whole, assigned deterministically
    (by crc32: Python's own hash is salted per process)."""
    ordered = sorted(set(groups.tolist()), key=lambda g: zlib.crc32(str(g).encode()))
    order = {g: i % k for i, g in enumerate(ordered)}
    fold = np.array([order[g] for g in groups.tolist()])
    return [fold == i for i in range(k)]


def out_of_fold(name: str, frame: pd.DataFrame) -> np.ndarray:
    """Each row's prediction by a model fitted without its result's rows (NaN when the family
    has too few results to hold one out)."""
    groups = frame["result_id"].to_numpy(object)
    k = min(FOLDS, len(set(groups.tolist())))
    pred = np.full(len(frame), np.nan)
    if k < 2:
        return pred
    for held in _folds(groups, k):
        train = frame[~held]
        if len(train) < 1:
            continue
        pred[held] = fit_model(name, train).predict_us(frame[held])
    return pred


@dataclass
class KernelPredictor:
    """Every family's model, the pooled fallback, and each family's out-of-fold errors."""

    families: dict[str, FamilyModel]
    pooled: FamilyModel
    oof: pd.DataFrame | None = field(default=None, repr=False)  # training only, not stored

    def predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """Predicted µs per row, and per row what predicted it: the family's own model, or
        ``pooled`` (a family with no or too little training data)."""
        out = np.zeros(len(frame))
        basis = ["pooled"] * len(frame)
        fams = frame["family"].to_numpy(object)
        for fam in sorted(set(fams.tolist())):
            mask = fams == fam
            model = self.families.get(fam)
            out[mask] = (model or self.pooled).predict_us(frame[mask])
            if model is not None:
                for i in np.flatnonzero(mask):
                    basis[i] = "family"
        return out, basis

    def sigma(self, family: str) -> float:
        """A family's out-of-fold spread of ln(predicted / measured); the pooled one's when it
        has no model."""
        model = self.families.get(family)
        return (model or self.pooled).sigma

    def to_json(self) -> dict[str, Any]:
        return {"families": [m.to_json() for m in self.families.values()],
                "pooled": self.pooled.to_json()}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KernelPredictor:
        fams = [FamilyModel.from_json(d) for d in data["families"]]
        return cls({m.family: m for m in fams}, FamilyModel.from_json(data["pooled"]))


def _spread(pred: np.ndarray, times: np.ndarray) -> float:
    ok = np.isfinite(pred) & (pred > 0)
    if ok.sum() < 2:
        return math.log(2.0)  # no evidence: a factor of two either way
    return float(np.sqrt(np.mean(np.log(pred[ok] / times[ok]) ** 2)))


def train_kernels(samples: pd.DataFrame, with_oof: bool = True) -> KernelPredictor:
    """Fit every family with at least MIN_OWN samples, and the pooled model on all of them.

    `samples` has FEATURES, ``family``, ``kernel_time_us`` and ``result_id`` per row."""
    families: dict[str, FamilyModel] = {}
    oof_parts = []
    for fam, rows in samples.groupby("family", sort=True):
        if len(rows) < MIN_OWN:
            continue
        model = fit_model(str(fam), rows)
        if with_oof:
            pred = out_of_fold(str(fam), rows)
            model.sigma = _spread(pred, rows["kernel_time_us"].to_numpy(float))
            oof_parts.append(rows.assign(oof_us=pred))
        families[str(fam)] = model
    pooled = fit_model(POOLED, samples)
    if with_oof:
        pooled.sigma = _spread(
            out_of_fold(POOLED, samples), samples["kernel_time_us"].to_numpy(float)
        )
    oof = pd.concat(oof_parts, ignore_index=True) if oof_parts else None
    return KernelPredictor(families, pooled, oof)
