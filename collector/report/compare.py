"""Across devices: is one device slower on a model by as much as its peak FLOP/s predicts?

For each model at one setting run on several devices, each device is compared with a
reference device. latency_ratio = p50 / reference p50; peak_ratio = reference peak / peak
(the slowdown that peak FLOP/s alone predicts); gap = latency_ratio / peak_ratio, so a gap
of 2 means twice as slow as the peaks say. roofline_ratio uses attainable time instead,
which accounts for memory bandwidth too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from collector.report.roofline import number

CROSS_COLUMNS = (
    "model", "provider", "threads", "opt_level", "device", "reference", "p50_ms",
    "reference_p50_ms", "latency_ratio", "peak_ratio", "roofline_ratio", "gap",
)  # fmt: skip
_KEYS = ["model", "provider", "threads", "opt_level"]


def _ratio(a: Any, b: Any) -> float | None:
    x, y = number(a), number(b)
    return x / y if x is not None and y else None


def pick_reference(models: pd.DataFrame, preferred: Sequence[str] = ()) -> str | None:
    """The first preferred device present, else the device with the most models (by name on
    a tie): the fleet's best-covered device is the most useful yardstick."""
    present = set(models["device"])
    for device in preferred:
        if device in present:
            return device
    if not present:
        return None
    counts = models.groupby("device")["model"].nunique()
    return str(sorted(counts.index, key=lambda d: (-counts[d], d))[0])


def cross_device_table(
    models: pd.DataFrame, preferred: Sequence[str] = ()
) -> tuple[pd.DataFrame, list[str]]:
    """One row per (model, setting, non-reference device); the missing list names devices
    whose peak ratio cannot be computed."""
    rows: list[dict[str, Any]] = []
    uncalibrated: set[str] = set()
    key_frame = models.assign(**{k: models[k].astype(str) for k in _KEYS if k != "model"})
    for _, group in key_frame.groupby(_KEYS, sort=True):
        if group["device"].nunique() < 2:
            continue
        reference = pick_reference(group, preferred)
        ref = group[group["device"] == reference].iloc[0]
        for idx, row in group[group["device"] != reference].iterrows():
            original = models.loc[idx]
            latency_ratio = _ratio(row["p50_ms"], ref["p50_ms"])
            peak_ratio = _ratio(ref["peak_gflops"], row["peak_gflops"])
            for d, cal in ((row["device"], row["peak_gflops"]), (reference, ref["peak_gflops"])):
                if number(cal) is None:
                    uncalibrated.add(str(d))
            rows.append(
                {
                    "model": row["model"],
                    "provider": original["provider"],
                    "threads": original["threads"],
                    "opt_level": original["opt_level"],
                    "device": row["device"],
                    "reference": reference,
                    "p50_ms": row["p50_ms"],
                    "reference_p50_ms": ref["p50_ms"],
                    "latency_ratio": latency_ratio,
                    "peak_ratio": peak_ratio,
                    "roofline_ratio": _ratio(row["attainable_ms"], ref["attainable_ms"]),
                    "gap": _ratio(latency_ratio, peak_ratio),
                }
            )
    missing = [
        f"cross-device: no calibrated peak for {d}: latency ratios shown without peak ratios"
        for d in sorted(uncalibrated)
    ]
    return pd.DataFrame(rows, columns=list(CROSS_COLUMNS)), missing
