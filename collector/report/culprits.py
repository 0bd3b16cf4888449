"""Which operators make a model slower than its FLOPs: the per-model breakdown and culprits.

The op-type table sums a device's models, so a flagged model's finding could not say which
of ITS operators cost it. Here every (device, model) with a profile gets its own table of op
types (and fused nodes, which keep their ORT op type) ranked by excess share: the share of the
model's kernel time an op type takes minus its share of the model's counted FLOPs. An op that
takes 18 % of the time for 1 % of the FLOPs is what FLOPs mispredict. Each row is placed on
the device's roofline (``collector.report.roofline.place``) at its own time, FLOPs and bytes.
Units: time_us per inference (µs), flops per inference, bytes read + written, gflops 1e9/s.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from collector.report import roofline
from collector.report.numbers import number
from collector.report.roofs import classify

MODEL_OP_COLUMNS = (
    "device", "model", "op_type", "nodes", "time_share", "flop_share", "excess_share",
    "time_us", "flops", "bytes", "gflops", "bound",
)  # fmt: skip
TOP = 3  # culprits named per finding
NO_PROFILE = "no op profile: run with the per-op pass (campaign setting profile_ops = true)"
DATA_MOVEMENT_BOUND = "data movement"  # 0 FLOPs, bytes only: no roofline point


def model_op_table(
    ops: pd.DataFrame, models: pd.DataFrame, calibration: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per (device, model, op type), ranked by excess_share within (device, model),
    from `ops` as ``collector.report.ops.prepare`` gives it; `models` supplies each model's
    calibration (peak_gflops, bandwidth_gbs) for the bound, and `calibration` (the report's
    calibration frame) the cache roofs of its agent at its threads, so an op row is judged by
    the same cache-aware rules as its model (``roofs.classify``)."""
    if ops.empty:
        return pd.DataFrame(columns=list(MODEL_OP_COLUMNS))
    cal = {}
    if calibration is not None and not calibration.empty:
        cal = {(str(r["agent_id"]), _int(r.get("threads"))): r
               for r in calibration.to_dict(orient="records")}  # fmt: skip
    roofs = {
        (r["device"], r["model"]): cal.get((str(r.get("agent_id")), _int(r.get("threads"))), r)
        for r in models.to_dict(orient="records")
    }
    parts = [
        _model_rows(str(device), str(model), g, roofs.get((device, model), {}))
        for (device, model), g in ops.groupby(["device", "model"], sort=True)
    ]
    return pd.concat(parts).reset_index(drop=True)


def _model_rows(device: str, model: str, ops: pd.DataFrame, roof: Any) -> pd.DataFrame:
    """One model's op types on one device, ranked (a share that cannot be known ranks last)."""
    total_time = float(ops["kernel_time_us"].sum())
    total_flops = float(ops["flops"].sum())  # NaN skipped: shares are of the counted FLOPs
    rows = []
    for label, g in ops.groupby("label", sort=True):
        time_us = float(g["kernel_time_us"].sum())
        flops = float(g["flops"].sum()) if g["flops"].notna().all() else None
        nbytes = float(g["bytes"].sum()) if g["bytes"].notna().all() else None
        time_share = time_us / total_time if total_time > 0 else None
        flop_share = flops / total_flops if flops is not None and total_flops > 0 else None
        excess = None if time_share is None or flop_share is None else time_share - flop_share
        rows.append(
            {
                "device": device,
                "model": model,
                "op_type": label,
                "nodes": round(float(g["node_runs"].sum())),
                "time_share": time_share,
                "flop_share": flop_share,
                "excess_share": excess,
                "time_us": time_us,
                "flops": flops,
                "bytes": nbytes,
                "gflops": flops / (time_us * 1e3) if flops is not None and time_us > 0 else None,
                "bound": _bound(flops, nbytes, time_us, roof),
            }
        )
    table = pd.DataFrame(rows, columns=list(MODEL_OP_COLUMNS))
    order = table["excess_share"].astype(float).fillna(-math.inf)
    return table.iloc[order.sort_values(ascending=False, kind="stable").index]


def _int(value: Any) -> int | None:
    n = number(value)
    return None if n is None else int(n)


def _bound(flops: float | None, nbytes: float | None, time_us: float, roof: Any) -> str | None:
    """The roofline's verdict on one op type; "data movement" for 0 FLOPs that move bytes.

    `roof` is a calibration row (or a model row carrying peak and DRAM bandwidth); the op's
    own bytes are its working set, an upper bound."""
    if flops == 0 and nbytes:
        return DATA_MOVEMENT_BOUND
    if not flops or not nbytes or time_us <= 0:
        return None
    bound, _note, _level, _slowdown = classify(
        flops / nbytes, flops / (time_us * 1e3), nbytes, roof
    )
    return bound


def percent(share: Any) -> str:
    """A share as the finding says it: "18 %", "0.3 %", "0" for nothing, "?" when unknown."""
    value = roofline.number(share)
    if value is None:
        return "?"
    if value <= 0:
        return "0"
    pct = value * 100
    return f"{pct:.0f} %" if pct >= 1 else f"{pct:.1g} %"


def phrases(rows: pd.DataFrame) -> list[str]:
    """Up to TOP culprits of one model: op types whose time share exceeds their FLOP share,
    worst first; the first names its units ("of time for ... of FLOPs"), the rest are terse."""
    excess = rows["excess_share"].map(roofline.number)
    worst = rows[excess.map(lambda e: e is not None and e > 0)].head(TOP)
    out = []
    for i, row in enumerate(worst.to_dict(orient="records")):
        time, flops = percent(row["time_share"]), percent(row["flop_share"])
        of_time, of_flops = (" of time", " of FLOPs") if i == 0 else ("", "")
        flops = "0 %" if i == 0 and flops == "0" else flops  # "for 0 % of FLOPs", not "0 of"
        out.append(f"{short_op(row['op_type'])} {time}{of_time} for {flops}{of_flops}")
    return out


def short_op(label: Any) -> str:
    """An op type as a finding names it, without its domain: "com.microsoft.nchwc.Conv
    (depthwise)" reads "Conv (depthwise)" (the model_ops table keeps the full key)."""
    op, _, hint = str(label).partition(" (")
    short = op.rsplit(".", 1)[-1]
    return f"{short} ({hint}" if hint else short


def culprits(models: pd.DataFrame, model_ops: pd.DataFrame) -> dict[tuple[str, str], list[str]]:
    """(device, model) -> its culprit phrases, for every flagged model (the NO_PROFILE line
    for one without a profile; an empty list when no op type exceeds its FLOP share)."""
    if "flag" not in models or models.empty:
        return {}
    flagged = models[models["flag"].fillna("") != ""]
    groups = {key: g for key, g in model_ops.groupby(["device", "model"], sort=False)}
    out: dict[tuple[str, str], list[str]] = {}
    for row in flagged.itertuples():
        key = (str(row.device), str(row.model))
        out[key] = phrases(groups[key]) if key in groups else [NO_PROFILE]
    return out


def with_culprits(finding: str, named: list[str] | None) -> str:
    """A finding sentence followed by its culprits: "m is 2.0× slower ...: Add 9 % of ..."."""
    return f"{finding}: {', '.join(named)}" if named else finding
