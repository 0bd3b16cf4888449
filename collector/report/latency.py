"""The latency view: p50 and p90 per device × model, invalid ones marked, and the fastest valid
model per device.

Why: "which model is fastest on my board?" is the first question a user asks, and it needs
no FLOPs, no calibration and no profile. Unlike the analysis, this table shows every ok result,
invalid ones too, marked with their reasons: hiding a device's only measurement of a model
would read as "never measured". Medians are over the valid repeats when there are any, over
all repeats otherwise (then the row is marked invalid).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from collector.report.frames import device_keys
from collector.report.roofline import number
from collector.report.units import ms
from collector.report.validity import is_valid, reason_kinds

LATENCY_COLUMNS = ("device", "model", "p50_ms", "p90_ms", "n", "valid", "invalid_reasons")


def _model_keys(results: pd.DataFrame) -> pd.Series:
    """The model name, plus its input shapes when one name ran at several shapes (the model
    table's key, so both tables name a model alike)."""
    names = results["model_name"].astype(str)
    shapes = results["input_shapes"].astype(str)
    many = shapes.groupby(names).transform("nunique") > 1
    return names.where(~many, names + " " + shapes)


def _median(series: pd.Series) -> float | None:
    values = [v for v in map(number, series) if v is not None]
    return float(pd.Series(values).median()) if values else None


def _reasons(group: pd.DataFrame, used_valid: bool) -> str:
    """What the left-out or invalid repeats were, e.g. "1 of 3 invalid: other processes"."""
    bad = group[~group["valid"].map(is_valid).astype(bool)]
    if bad.empty:
        return ""
    kinds: list[str] = []
    for reasons in bad["invalid_reasons"]:
        kinds += [k for k in reason_kinds(reasons) if k not in kinds]
    left = " (left out)" if used_valid else ""
    return f"{len(bad)} of {len(group)} invalid{left}: " + ", ".join(kinds)


def latency_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per device × model over ok `results` (valid or not; frames.RESULT_COLUMNS)."""
    if results.empty:
        return pd.DataFrame(columns=list(LATENCY_COLUMNS))
    df = results.assign(device=device_keys(results), model=_model_keys(results))
    rows: list[dict[str, Any]] = []
    for (device, model), group in df.groupby(["device", "model"], sort=True):
        valid = group["valid"].map(is_valid).astype(bool)
        used = group[valid] if valid.any() else group
        rows.append(
            {
                "device": device,
                "model": model,
                "p50_ms": _median(used["p50_ms"]),
                "p90_ms": _median(used["p90_ms"]),
                "n": len(used),
                "valid": bool(valid.any()),
                "invalid_reasons": _reasons(group, bool(valid.any())),
            }
        )
    return pd.DataFrame(rows, columns=list(LATENCY_COLUMNS))


def fastest(latency: pd.DataFrame) -> dict[str, str | None]:
    """Device -> its fastest valid model by p50 (None when the device has no valid one)."""
    out: dict[str, str | None] = {}
    for device, group in latency.groupby("device", sort=True):
        timed = group[group["valid"].astype(bool) & group["p50_ms"].map(number).notna()]
        if timed.empty:
            out[str(device)] = None
            continue
        best = timed.assign(t=timed["p50_ms"].astype(float)).sort_values("t", kind="stable")
        out[str(device)] = str(best.iloc[0]["model"])
    return out


def fastest_line(latency: pd.DataFrame, best: dict[str, str | None]) -> str:
    """E.g. "fastest valid model per device: pi5-a mlp (0.41 ms), jetson convnet (1.2 ms)"."""
    if not best:
        return "fastest valid model per device: no results"
    parts = []
    for device, model in best.items():
        if model is None:
            parts.append(f"{device} none valid")
            continue
        row = latency[(latency["device"] == device) & (latency["model"] == model)].iloc[0]
        parts.append(f"{device} {model} ({ms(row['p50_ms'])} ms)")
    return "fastest valid model per device: " + ", ".join(parts)
