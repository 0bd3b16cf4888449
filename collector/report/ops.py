"""Per op type per device: where the time goes against where the FLOPs are.

Kernel times come from ORT's profiler on the graph ORT actually runs, after fusion: a Conv may
carry the FLOPs of a BatchNormalization and a Relu that no longer exist as nodes. ``fused_from``
names those, and the table counts them so the report can say what was fused away.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from collector.report.roofline import number
from collector.report.units import si

OP_COLUMNS = (
    "device", "op_type", "nodes", "time_us", "time_share", "flops", "flop_share",
    "excess_share", "gflops", "bytes", "intensity", "fused_nodes", "rank",
)  # fmt: skip
MATCH_TOLERANCE = 0.01  # op FLOPs within 1% of the model's count match the graph


def op_label(row: pd.Series) -> str:
    """The op type, split into "Conv (depthwise)" when a hint column says so (a `depthwise`
    flag, or `group` == `channels` > 1); without a hint a Conv stays "Conv"."""
    op = str(row["op_type"])
    if not op.endswith("Conv"):
        return op
    hint = row.get("depthwise")
    if hint is not None and hint == hint:
        return f"{op} (depthwise)" if bool(hint) else op
    group, channels = number(row.get("group")), number(row.get("channels"))
    if group is not None and channels is not None and group > 1 and group == channels:
        return f"{op} (depthwise)"
    return op


def _per_inference(ops: pd.DataFrame) -> pd.DataFrame:
    """Divide each node's numbers by its model's profiled-result count on that device, so
    repeats average instead of adding up; sums are then per one inference of each model."""
    runs = ops.groupby(["device", "model"])["result_id"].transform("nunique").astype(float)
    out = ops.copy()
    if "folded_flops" not in out.columns:
        out["folded_flops"] = 0
    for column in ("kernel_time_us", "flops", "bytes", "folded_flops"):
        out[column] = pd.to_numeric(out[column], errors="coerce") / runs
    out["node_runs"] = 1.0 / runs
    return out


def op_type_table(
    op_times: pd.DataFrame, models: pd.DataFrame, result_device: pd.DataFrame
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The op-type table, what is missing, and notes on fusion.

    `result_device` maps result_id -> device, model (one row per ok result); `models` is the
    model table, used to check op FLOPs against each model's count.
    """
    if op_times.empty:
        note = [] if models.empty else ["no per-op times: the profiling pass was not run"]
        return pd.DataFrame(columns=list(OP_COLUMNS)), note, []
    ops, missing = prepare(op_times, result_device)
    if ops.empty:
        return pd.DataFrame(columns=list(OP_COLUMNS)), missing, []
    missing += _unmatched(ops) + _flop_mismatches(ops, models)
    table = pd.concat([_device_ops(d, g) for d, g in ops.groupby("device", sort=True)])
    return table.reset_index(drop=True), missing, _fusion_notes(ops)


def prepare(op_times: pd.DataFrame, result_device: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Op times joined to their (device, model), labelled (``label``: "Conv (depthwise)"), and
    per one inference of each model; op times of results outside the report are dropped and
    said. Both the op-type table and the per-model breakdown start from this frame."""
    ops = op_times.merge(result_device, on="result_id", how="left")
    missing = []
    orphans = ops["device"].isna()
    if orphans.any():
        n = ops.loc[orphans, "result_id"].nunique()
        missing.append(f"op times of {n} result(s) match no ok result in this report: ignored")
    ops = ops[~orphans].copy()
    if ops.empty:
        return ops, missing
    ops["label"] = ops.apply(op_label, axis=1)
    return _per_inference(ops), missing


def _device_ops(device: str, ops: pd.DataFrame) -> pd.DataFrame:
    total_time = ops["kernel_time_us"].sum()
    total_flops = ops["flops"].sum()  # NaN skipped: shares are of the counted FLOPs
    rows = []
    for label, g in ops.groupby("label", sort=True):
        time_us, flops_known = float(g["kernel_time_us"].sum()), bool(g["flops"].notna().all())
        flops = float(g["flops"].sum()) if flops_known else None
        nbytes = float(g["bytes"].sum()) if g["bytes"].notna().all() else None
        time_share = time_us / total_time if total_time > 0 else None
        flop_share = flops / total_flops if flops is not None and total_flops > 0 else None
        rows.append(
            {
                "device": device,
                "op_type": label,
                "nodes": round(float(g["node_runs"].sum()), 2),
                "time_us": time_us,
                "time_share": time_share,
                "flops": flops,
                "flop_share": flop_share,
                "excess_share": None
                if time_share is None or flop_share is None
                else time_share - flop_share,
                "gflops": flops / (time_us * 1e3) if flops is not None and time_us > 0 else None,
                "bytes": nbytes,
                "intensity": flops / nbytes if flops is not None and nbytes else None,
                "fused_nodes": round(_fused_total(g), 2),
            }
        )
    table = pd.DataFrame(rows)
    order = table["excess_share"].astype(float).fillna(float("-inf"))
    table = table.iloc[order.sort_values(ascending=False, kind="stable").index]
    table["rank"] = range(1, len(table) + 1)
    return table.loc[:, list(OP_COLUMNS)]


def _fused_count(fused_from: Any) -> int:
    return len([n for n in str(fused_from).split(";") if n]) if fused_from else 0


def _fused_total(ops: pd.DataFrame) -> float:
    """Original nodes fused into these nodes, per inference of each model."""
    counts = ops["fused_from"].map(_fused_count)
    return float((counts * ops["node_runs"]).sum())


def _unmatched(ops: pd.DataFrame) -> list[str]:
    """Profiled nodes with no FLOPs: the profiler named a node the counted graph lacks."""
    lines = []
    for device, g in ops[ops["flops"].isna()].groupby("device", sort=True):
        types = ", ".join(sorted(g["label"].unique()))
        lines.append(
            f"{device}: {g['node_name'].nunique()} profiled node(s) match no counted node, "
            f"so have no FLOPs ({types}); their op types show no FLOP share"
        )
    return lines


def _flop_mismatches(ops: pd.DataFrame, models: pd.DataFrame) -> list[str]:
    """Models whose per-op FLOPs do not sum to the model's count (within 1%)."""
    counted = {(r.device, r.model): number(r.flops) for r in models.itertuples()}
    lines = []
    for (device, model), g in ops.groupby(["device", "model"], sort=True):
        expected = counted.get((device, model))
        if expected is None or g["flops"].isna().any():
            continue
        got = float(g["flops"].sum())
        folded = float(g["folded_flops"].fillna(0).sum())  # counted, but never run
        if abs(got + folded - expected) > MATCH_TOLERANCE * expected:
            with_folded = f" (+{si(folded, 'FLOP')} folded into weights)" if folded else ""
            lines.append(
                f"{model} on {device}: op FLOPs sum to {si(got, 'FLOP')}{with_folded}, the "
                f"model counts {si(expected, 'FLOP')}; op times do not match the counted graph"
            )
    return lines


def _fusion_notes(ops: pd.DataFrame) -> list[str]:
    notes = []
    for device, g in ops.groupby("device", sort=True):
        fused = g[g["fused_from"].map(_fused_count) > 0]
        if fused.empty:
            continue
        originals = _fused_total(fused)
        kinds = ", ".join(sorted(fused["label"].unique()))
        notes.append(
            f"{device}: ORT fused {originals:.0f} original node(s) into "
            f"{fused['node_runs'].sum():.0f} node(s) ({kinds}); their FLOPs and time are "
            "counted on the fused node"
        )
        folded = g.groupby("model")["folded_flops"].sum(min_count=1).dropna()
        for model, flops in folded[folded > 0].items():
            notes.append(
                f"{device}: {model}'s BatchNormalizations were folded into convolution "
                f"weights at load: {si(flops, 'FLOP')} of its counted FLOPs are never run"
            )
    return notes
