"""The model table: one row per device x model, with achieved GFLOP/s and its roofline.

Pure functions from frames to frames plus a list of what was missing. A "device" is an agent
at one combination of settings (see frames.device_keys); repeats of a model are summarised by
their median p50.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from collector.report import roofline, roofs
from collector.report.frames import device_keys

MODEL_COLUMNS = (
    "device", "agent_id", "host", "provider", "threads", "opt_level", "model", "results",
    "valid", "flops", "macs", "params", "bytes", "intensity", "p50_ms", "p90_ms", "cv",
    "power_avg_w", "achieved_gflops", "unique_bytes",
)  # fmt: skip
_MEDIAN = ("p50_ms", "p90_ms", "cv", "power_avg_w")
_FIRST = ("flops", "macs", "params", "bytes", "intensity")
_OPTIONAL_FIRST = ("unique_bytes",)  # the working set, when the results carry it


def _median(series: pd.Series) -> float | None:
    values = [v for v in map(roofline.number, series) if v is not None]
    return float(pd.Series(values).median()) if values else None


def _first(series: pd.Series) -> Any:
    values = [v for v in map(roofline.number, series) if v is not None]
    return values[0] if values else None


def host_label(hostname: Any, board: Any) -> str:
    """The label of a host in tables and plot titles, e.g. pi-3 (Raspberry Pi 5)."""
    host = str(hostname) if hostname is not None and hostname == hostname else "?"
    return f"{host} ({board})" if board is not None and board == board and board else host


def _model_keys(results: pd.DataFrame) -> pd.Series:
    """The model name, plus its input shapes when one name ran at several shapes."""
    names = results["model_name"].astype(str)
    shapes = results["input_shapes"].astype(str)
    many = shapes.groupby(names).transform("nunique") > 1
    return names.where(~many, names + " " + shapes)


def model_table(results: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per device x model: medians over repeats, counts, achieved GFLOP/s."""
    if results.empty:
        return pd.DataFrame(columns=list(MODEL_COLUMNS)), []
    df = results.assign(device=device_keys(results), model=_model_keys(results))
    rows, missing = [], []
    for (device, model), group in df.groupby(["device", "model"], sort=True):
        head = group.iloc[0]
        row: dict[str, Any] = {
            "device": device,
            "agent_id": head["agent_id"],
            "host": host_label(head["hostname"], head["board"]),
            "provider": head["provider"],
            "threads": _threads(head["threads"]),
            "opt_level": head["opt_level"],
            "model": model,
            "results": len(group),
            "valid": bool(group["valid"].fillna(True).astype(bool).all()),
        }
        row.update({c: _median(group[c]) for c in _MEDIAN})
        row.update({c: _first(group[c]) for c in _FIRST})
        row.update({c: _first(group[c]) if c in group else None for c in _OPTIONAL_FIRST})
        if row["intensity"] is None and row["flops"] is not None and row["bytes"]:
            row["intensity"] = row["flops"] / row["bytes"]
        row["achieved_gflops"] = roofline.achieved_gflops(row["flops"], row["p50_ms"])
        if row["flops"] is None:
            reason = _first_text(group["flops_error"]) or "not counted"
            missing.append(f"{model} on {device}: no FLOPs count ({reason})")
        rows.append(row)
    invalid = [f"{r['model']} on {r['device']}" for r in rows if not r["valid"]]
    if invalid:
        missing.append(
            "measurements flagged invalid (kept, see column valid): " + ", ".join(invalid)
        )
    return pd.DataFrame(rows, columns=list(MODEL_COLUMNS)), missing


def _first_text(series: pd.Series) -> str | None:
    texts = [str(v) for v in series if isinstance(v, str) and v]
    return texts[0] if texts else None


ROOF_COLUMNS = (
    "peak_gflops",
    "bandwidth_gbs",
    "ridge_flop_per_byte",
    "efficiency",
    "attainable_gflops",
    "bound",
    "attainable_ms",
    "slowdown",
    "bound_note",
    "roof_level",
    "roof_bandwidth_gbs",
    "working_set_bytes",
)


def roof_values(row: Any, peak: float | None, bw: float | None, cal: Any = None) -> list[Any]:
    """The ROOF_COLUMNS of one model row at a calibration (None where it cannot be placed).

    The working set is the model's unique bytes when the results carry them, else its bytes
    summed over nodes, an upper bound (the note then says "≤")."""
    values: list[Any] = [peak, bw, roofline.ridge(peak, bw)]
    values.append(roofline.efficiency(row.achieved_gflops, peak))
    unique = roofline.number(getattr(row, "unique_bytes", None))
    working_set = unique if unique is not None else roofline.number(row.bytes)
    point = roofline.place(
        row.flops, row.bytes, row.p50_ms, peak, bw,
        caches=roofs.calibration_roofs(cal) if cal is not None else (),
        working_set=working_set, upper_bound=unique is None,
    )  # fmt: skip
    if point is None:
        return [*values, None, None, None, None, None, None, None, working_set]
    return [
        *values, point.attainable_gflops, point.bound, point.attainable_ms, point.slowdown,
        point.bound_note, point.roof_level, point.roof_bandwidth_gbs, working_set,
    ]  # fmt: skip


def attach_roofline(
    models: pd.DataFrame, calibration: pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """Join each row with its agent's calibration at the same thread count and place it on the
    cache-aware roofline (collector.report.roofs): bound, bound_note, roof_level and slowdown
    (measured / attainable, >= 1 = slower than the roof allows); rows without a calibration
    keep None in every derived column."""
    out = models.copy()
    calib = {(str(r.agent_id), _threads(r.threads)): r for r in calibration.itertuples()}
    derived: list[list[Any]] = []
    uncalibrated: set[str] = set()
    for row in models.itertuples():
        cal = calib.get((str(row.agent_id), _threads(row.threads)))
        peak = roofline.number(cal.peak_gflops) if cal is not None else None
        bw = roofline.number(cal.bandwidth_gbs) if cal is not None else None
        if peak is None or bw is None:
            uncalibrated.add(f"{row.device} (agent {row.agent_id}, {row.threads} threads)")
        derived.append(roof_values(row, peak, bw, cal))
    for i, column in enumerate(ROOF_COLUMNS):
        out[column] = pd.Series([v[i] for v in derived], index=out.index, dtype=object)
    missing = [
        f"no calibration (peak, bandwidth) for {d}: no efficiency or roofline"
        for d in sorted(uncalibrated)
    ]
    return out, missing


def roof_warnings(models: pd.DataFrame) -> list[str]:
    """Models above every calibrated roof (slowdown < 1 against the highest one): the
    calibration is below what the model achieved, so read its roofline with care. Points
    judged against a cache roof are not warned about: their bound_note says why."""
    if "bound" not in models:
        return []
    above = models[models["bound"] == roofs.ABOVE]
    return [
        f"{r.model} on {r.device}: slowdown {r.slowdown:.2f} (< 1: faster than every "
        f"calibrated roof allows); {r.bound_note}"
        for r in above.itertuples()
    ]


def _threads(value: Any) -> int | None:
    n = roofline.number(value)
    return None if n is None else int(n)


def result_index(results: pd.DataFrame) -> pd.DataFrame:
    """result_id -> device and model keys, to join per-result data such as op times."""
    if results.empty:
        return pd.DataFrame(columns=["result_id", "device", "model"])
    return pd.DataFrame(
        {
            "result_id": results["result_id"],
            "device": device_keys(results),
            "model": _model_keys(results),
        }
    )
