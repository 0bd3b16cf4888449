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

PREDICTOR_FORMAT = 2  # 2: the device's calibration, for the cold-weight floor


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
    calibration: dict[str, float] | None = None  # the device's DRAM bandwidth and L2 size

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
            "calibration": self.calibration,
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
                "predictors are found by a hash that includes their format; report this",
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
            calibration=payload.get("calibration"),
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


def device_calibration(store: Any, key: DeviceKey) -> dict[str, float] | None:
    """The device's measured DRAM bandwidth (GB/s) and L2 size (bytes) at the key's threads,
    from its stored calibration (None when it has none: whole models then get no cold-weight
    floor)."""
    for row in store.calibration_rows():
        if row.agent_id == key.agent and row.threads == key.threads and row.bandwidth_gbs:
            l2 = row.detail.get("l2_bytes")
            return {"bandwidth_gbs": float(row.bandwidth_gbs),
                    "l2_bytes": float(l2) if l2 else float(1 << 20)}  # fmt: skip
    return None


def train(
    key: DeviceKey,
    models: Sequence[Measured],
    models_dir: Path,
    with_oof: bool = True,
    calibration: dict[str, float] | None = None,
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
    frame = apportioned(pd.DataFrame(rows), models)
    kernels = train_kernels(frame, with_oof=with_oof)
    return Predictor(
        key=key,
        kernels=kernels,
        correction=_correction(models, frame),
        data_hash=training_hash(models),
        samples=len(frame),
        models=int(frame["result_id"].nunique()),
        families=sorted({m.family for m in models if m.profile is not None}),
        trained_at=time.time(),
        calibration=calibration,
    )


APPORTION_LIMITS = (0.2, 2.0)


def apportioned(frame: pd.DataFrame, models: Sequence[Measured]) -> pd.DataFrame:
    """Each profiled model's unprofiled p50, less the device's per-run cost, shared out over
    its kernels in proportion to their profiled times: what the regressors learn.

    Why: profiled times are not the times a kernel takes inside an unprofiled run. At 2
    threads on a 2-core box, a sweep kernel of 30..300 µs profiled alone measured 1.4 to 1.9
    times its unprofiled p50 (each profiled run wakes the thread pool, which back-to-back
    inferences keep spinning), while whole models' profiles stayed within ~5 % of their p50;
    a regressor learning raw sweep times predicted a whole model's convolutions up to 1.9x
    slow. Shared out, every training model's kernels sum to its measured latency. The first
    fit (per-run cost a) is on the raw sums; the factor is clipped to APPORTION_LIMITS."""
    first = _correction(models, frame)
    p50 = {m.result_id: m.p50_us for m in models}
    sums = frame.groupby("result_id")["kernel_time_us"].transform("sum")
    target = frame["result_id"].map(p50) - first.intercept_us
    factor = (target / sums).clip(*APPORTION_LIMITS)
    return frame.assign(profiled_us=frame["kernel_time_us"],
                        kernel_time_us=frame["kernel_time_us"] * factor)  # fmt: skip


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


def training_hash(models: Sequence[Measured]) -> str:
    """What a stored predictor is found by: its results, the features and this format, so a
    predictor stored by an older flopgap is never read as a current one (it is retrained)."""
    return data_hash(models, f"predictor {PREDICTOR_FORMAT}")


FOLDS_SLOT = "#folds"
"""Evaluation's predictors (each trained without one family) are stored under the device key
plus this, so they never count as the device's current predictor, and its versions stay the
device's own."""


def current(
    store: Any,
    key: DeviceKey,
    models: Sequence[Measured],
    models_dir: Path,
    progress: Callable[[str], None] | None = None,
    slot: str = "",
) -> Predictor:
    """The stored predictor trained on exactly `models`, else one trained now and stored
    (under the device key, or the key plus `slot`)."""
    digest = training_hash(models)
    row = store.predictor(key.text() + slot, digest)
    if row is not None:
        return Predictor.from_payload(key, row.payload, row)
    if progress is not None:
        progress(f"training a predictor of {key.label()} on {len(models)} results")
    fresh = train(key, models, models_dir, calibration=device_calibration(store, key))
    row = store.put_predictor(
        key.text() + slot, digest, fresh.samples, fresh.models, fresh.to_payload()
    )
    fresh.version = row.version
    return fresh
