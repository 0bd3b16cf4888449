"""The report's three inputs as pandas DataFrames, with their columns fixed here.

The analysis only ever sees these frames, so it can be tested on hand-made ones and fed from
the store, a CSV or a notebook alike. A column the analysis needs but the caller lacks is added
as all-missing (None), never filled with a number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

# One row per ok result; the names are those of collector.export.COLUMNS.
RESULT_COLUMNS: tuple[str, ...] = (
    "result_id",
    "model_name",
    "agent_id",
    "hostname",
    "board",
    "threads",
    "provider",
    "opt_level",
    "input_shapes",
    "p50_ms",
    "p90_ms",
    "cv",
    "valid",
    "invalid_reasons",
    "macs",
    "flops",
    "params",
    "bytes",
    "intensity",
    "power_avg_w",
    "flops_error",
    "status",
    "unique_bytes",
)
# One row per profiled node of one result; kernel_time_us is per inference (median over runs).
# Optional hint columns: "depthwise" (bool), or "group" and "channels" (ints) for Conv;
# "folded_flops": FLOPs of BatchNormalizations ORT folded into that node's weights.
OP_TIME_COLUMNS: tuple[str, ...] = (
    "result_id",
    "node_name",
    "op_type",
    "provider",
    "kernel_time_us",
    "flops",
    "macs",
    "bytes",
    "fused_from",
)
OP_HINT_COLUMNS: tuple[str, ...] = ("depthwise", "group", "channels", "folded_flops")
# Settings that make two results of one agent incomparable; a "device" in the report is an
# agent at one combination of them.
SETTING_COLUMNS: tuple[str, ...] = ("provider", "threads", "opt_level")


def frame(
    records: Iterable[Mapping[str, Any]] | pd.DataFrame | None,
    columns: Sequence[str],
    extra: Sequence[str] = (),
) -> pd.DataFrame:
    """A DataFrame with exactly `columns` (+ any of `extra` present); absent ones are None."""
    if records is None:
        df = pd.DataFrame()
    elif isinstance(records, pd.DataFrame):
        df = records.copy()
    else:
        df = pd.DataFrame(list(records))
    keep = list(columns) + [c for c in extra if c in df.columns]
    for column in columns:
        if column not in df.columns:
            df[column] = None
    return df.loc[:, keep].reset_index(drop=True)


def results_frame(records: Iterable[Mapping[str, Any]] | pd.DataFrame | None) -> pd.DataFrame:
    """Ok results only (an error result has no latency to analyse)."""
    df = frame(records, RESULT_COLUMNS)
    ok = df[df["status"].isna() | (df["status"] == "ok")]
    return ok.reset_index(drop=True)


def op_times_frame(records: Iterable[Mapping[str, Any]] | pd.DataFrame | None) -> pd.DataFrame:
    """Per-node kernel times; `fused_from` becomes a ";"-joined string ("" when none)."""
    df = frame(records, OP_TIME_COLUMNS, OP_HINT_COLUMNS)
    df["fused_from"] = df["fused_from"].map(_names)
    return df


def _names(value: Any) -> str:
    """Fused node names as one ";"-joined string, from a string or a list (op_join's form)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return ""


def from_store(
    store: Any, campaign_id: str | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """Results (every status), op times and calibration of a campaign from a collector Store.

    Op times come from ``store.op_time_rows(campaign_id)`` and calibrations from
    ``store.calibration_rows()`` when the store has them; an older store without those tables
    gives empty frames and a line in the returned missing list. The calibration rows come as
    stored (with ``detail_json``): ``calibration.calibration_frame`` reads them.
    """
    from collector.export import rows

    missing: list[str] = []
    all_rows = [r for r in rows(store, campaign_id) if r["job_result"]]  # not retried attempts
    extras: list[list[dict[str, Any]]] = []
    for method, args, what in (
        ("op_time_rows", (campaign_id,), "no per-op times: the store has no op_times table"),
        ("calibration_rows", (), "no calibration: the store has no calibration table"),
    ):
        reader = getattr(store, method, None)
        if reader is None:
            missing.append(what)
        extras.append([] if reader is None else [r._asdict() for r in reader(*args)])
    return (
        frame(all_rows, RESULT_COLUMNS),
        op_times_frame(extras[0]),
        pd.DataFrame(extras[1]),
        missing,
    )


def short_provider(provider: Any) -> str:
    """Shorten a provider name for labels: CPUExecutionProvider -> CPU."""
    return str(provider).removesuffix("ExecutionProvider")


def device_keys(results: pd.DataFrame) -> pd.Series:
    """The report's device key per row: the agent id, plus its settings when that agent ran
    more than one combination of them (so results at 1 and 4 threads are never mixed)."""
    if results.empty:
        return pd.Series([], dtype=object)
    # str() per cell: astype(str) keeps a missing setting missing (pandas' string dtype),
    # which "|".join refuses
    settings = results[list(SETTING_COLUMNS)].map(str).agg("|".join, axis=1)
    combos = settings.groupby(results["agent_id"]).transform("nunique")
    labels = []
    for (_, row), many in zip(results.iterrows(), combos, strict=True):
        key = str(row["agent_id"])
        if many > 1:
            key += f"/t{row['threads']}/{short_provider(row['provider'])}/{row['opt_level']}"
        labels.append(key)
    return pd.Series(labels, index=results.index, dtype=object)
