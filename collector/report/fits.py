"""How well FLOPs rank and predict latency on each device, and which models they mispredict.

Per device: Spearman and Kendall tau-b between FLOPs and p50 over its models, the fit
ln(p50 ms) = a + b ln(FLOPs), and each model's residual factor (measured / predicted).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from collector.report.defaults import DEFAULT_THRESHOLD
from collector.report.stats import (
    MIN_FIT_POINTS,
    PowerFit,
    kendall_tau_b,
    power_law_fit,
    spearman,
)

FIT_COLUMNS = (
    "device",
    "host",
    "models",
    "spearman",
    "kendall_tau_b",
    "fit_a",
    "fit_b",
    "r2",
    "flagged",
    "note",
)


def _usable(group: pd.DataFrame) -> pd.DataFrame:
    """Rows with a positive FLOP count and p50: the only ones a log-log fit can use."""
    flops = pd.to_numeric(group["flops"], errors="coerce")
    p50 = pd.to_numeric(group["p50_ms"], errors="coerce")
    return group[(flops > 0) & (p50 > 0)]


def device_fit(device: str, group: pd.DataFrame) -> tuple[dict[str, Any], PowerFit | None]:
    """The fits-table row of one device, and its fit (None when not possible, with why)."""
    usable = _usable(group)
    x, y = usable["flops"].astype(float).to_numpy(), usable["p50_ms"].astype(float).to_numpy()
    enough = len(usable) >= MIN_FIT_POINTS
    fit = power_law_fit(x, y) if enough else None
    row: dict[str, Any] = dict.fromkeys(FIT_COLUMNS)
    row.update(device=device, host=group["host"].iloc[0], models=len(usable), flagged=0, note="")
    row.update(
        spearman=spearman(x, y) if enough else None,
        kendall_tau_b=kendall_tau_b(x, y) if enough else None,
    )
    if fit is None:
        row["note"] = _no_fit_reason(len(usable))
    else:
        row.update(fit_a=fit.a, fit_b=fit.b, r2=fit.r2)
    return row, fit


def fit_devices(
    models: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Per device: rank correlations of FLOPs with p50, the log-log fit, and each model's
    residual factor (measured / predicted) with a flag beyond `threshold` either way.

    Returns the model table with predicted_ms, residual and flag added, the fits table, and
    the devices where no fit was possible."""
    out = models.copy()
    out["predicted_ms"] = pd.Series(None, index=out.index, dtype=object)
    out["residual"] = pd.Series(None, index=out.index, dtype=object)
    out["flag"] = ""
    rows, missing = [], []
    for device, group in models.groupby("device", sort=True):
        row, fit = device_fit(str(device), group)
        if fit is None:
            missing.append(f"{device}: {row['note']}")
        else:
            for idx in _usable(group).index:
                predicted = fit.predict(float(out.at[idx, "flops"]))
                factor = float(out.at[idx, "p50_ms"]) / predicted
                out.at[idx, "predicted_ms"], out.at[idx, "residual"] = predicted, factor
                out.at[idx, "flag"] = flag(factor, threshold)
            row["flagged"] = int((out.loc[group.index, "flag"] != "").sum())
        rows.append(row)
    return out, pd.DataFrame(rows, columns=list(FIT_COLUMNS)), missing


def _no_fit_reason(n: int) -> str:
    if n < MIN_FIT_POINTS:
        return f"fit not possible: {n} model(s) with FLOPs and latency, need {MIN_FIT_POINTS}"
    return "fit not possible: every model has the same FLOPs"


def flag(factor: float | None, threshold: float = DEFAULT_THRESHOLD) -> str:
    """Return "slower" or "faster" for a residual beyond `threshold` either way, else ""."""
    if factor is None or not math.isfinite(factor):
        return ""
    if factor >= threshold:
        return "slower"
    return "faster" if factor <= 1.0 / threshold else ""


def describe_residual(model: str, device: str, factor: float) -> str:
    """The finding as a sentence: "m is 3.1× slower than its FLOPs predict on rpi5"."""
    if factor >= 1:
        return f"{model} is {factor:.1f}× slower than its FLOPs predict on {device}"
    return f"{model} is {1 / factor:.1f}× faster than its FLOPs predict on {device}"
