"""A trained predictor of one device key: kernel regressors plus the per-device correction.

Stored in the store (table ``predictors``) as JSON with LightGBM's text models inside, under
the hash of the results it was trained on (``dataset.data_hash``). ``current`` is how every
caller gets one: the stored predictor when the store holds no valid result it has not seen,
else a new one trained now and stored as the next version; so predictors retrain when new
measurements arrive, and two predictions from one data set use one predictor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from collector.predict.correction import IDENTITY, Correction, fit_correction
from collector.predict.dataset import DeviceKey, Measured, data_hash, kernel_samples
from collector.predict.kernels import KernelPredictor, train_kernels
from shared.errors import UsageError

PREDICTOR_FORMAT = 1


@dataclass
class Predictor:
    """Everything a prediction needs, and what it was trained on."""

    key: DeviceKey
    kernels: KernelPredictor
    correction: Correction
    data_hash: str
    samples: int  # kernel samples the regressors learned from
    models: int  # whole models (results) they came from
    families: list[str]  # the model families trained on
    trained_at: float
    version: int | None = None  # the store's version; None for one not stored (a fold)

    def to_payload(self) -> dict[str, Any]:
        """The stored JSON document."""
        import lightgbm

        return {
            "format": PREDICTOR_FORMAT,
            "key": self.key.text(),
            "kernels": self.kernels.to_json(),
            "correction": self.correction.to_json(),
            "families": self.families,
            "trained_at": self.trained_at,
            "lightgbm": lightgbm.__version__,
        }

    @classmethod
    def from_payload(
        cls, key: DeviceKey, payload: Mapping[str, Any], row: Any | None = None
    ) -> Predictor:
        """A predictor from its stored document (and its store row's version and counts)."""
        if payload.get("format") != PREDICTOR_FORMAT:
            raise UsageError(
                f"stored predictor format {payload.get('format')}, this flopgap reads "
                f"{PREDICTOR_FORMAT}",
                "it is retrained on next use; nothing to do",
            )
        return cls(
            key=key,
            kernels=KernelPredictor.from_json(payload["kernels"]),
            correction=Correction.from_json(payload["correction"]),
            data_hash=str(getattr(row, "data_hash", "")),
            samples=int(getattr(row, "samples", 0)),
            models=int(getattr(row, "models", 0)),
            families=list(payload.get("families") or []),
            trained_at=float(payload.get("trained_at") or 0.0),
            version=getattr(row, "version", None),
        )

    def describe(self) -> dict[str, Any]:
        """The ``predictor`` block of a prediction's JSON."""
        return {
            "version": self.version,
            "samples": self.samples,
            "models": self.models,
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.trained_at)),
            "data_hash": self.data_hash[:16],
            "families": len(self.kernels.families),
            "device_key": self.key.label(),
        }


def train(
    key: DeviceKey, models: Sequence[Measured], models_dir: Path, with_oof: bool = True
) -> Predictor:
    """Train kernel regressors on every profiled model of `models`, and the correction on
    those models' unprofiled p50."""
    rows = kernel_samples(models, models_dir)
    if not rows:
        raise UsageError(
            f"no per-op profiles to learn from for {key.label()}",
            'run a sweep on this device first: a campaign with models = ["sweep:predict"] '
            "and [measure] profile_ops = true (docs/PREDICT.md)",
        )
    frame = pd.DataFrame(rows)
    kernels = train_kernels(frame, with_oof=with_oof)
    return Predictor(
        key=key,
        kernels=kernels,
        correction=_correction(models, frame),
        data_hash=data_hash(models),
        samples=len(frame),
        models=int(frame["result_id"].nunique()),
        families=sorted({m.family for m in models if m.profile is not None}),
        trained_at=time.time(),
    )


def _correction(models: Sequence[Measured], frame: pd.DataFrame) -> Correction:
    """Fitted on the profiled models: their measured kernel sums, node counts and p50."""
    by_result = frame.groupby("result_id")["kernel_time_us"].agg(["sum", "count"])
    p50 = {m.result_id: m.p50_us for m in models}
    if len(by_result) < 3:
        return IDENTITY
    return fit_correction(
        by_result["sum"].tolist(),
        by_result["count"].astype(int).tolist(),
        [p50[r] for r in by_result.index],
    )


def current(
    store: Any,
    key: DeviceKey,
    models: Sequence[Measured],
    models_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> Predictor:
    """The stored predictor trained on exactly `models`, else one trained now and stored."""
    digest = data_hash(models)
    row = store.predictor(key.text(), digest)
    if row is not None:
        return Predictor.from_payload(key, row.payload, row)
    if progress is not None:
        progress(f"training the predictor of {key.label()} on {len(models)} results")
    fresh = train(key, models, models_dir)
    row = store.put_predictor(key.text(), digest, fresh.samples, fresh.models, fresh.to_payload())
    fresh.version = row.version
    return fresh
