"""The report as fixed-width terminal text: latency first (model × device p50/p90, the fastest
valid model per device), then one model table per device, op types, cross-device ratios,
findings and what was missing. Numbers print by kind (units.py): counts as integers, shares
as %, FLOPs with SI prefixes; a missing number prints as "n/a"."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from collector.report import units
from collector.report.frames import short_provider
from collector.report.latency import fastest_line
from collector.report.report import Report
from collector.report.roofline import number

Formatter = Callable[[Any], str]
Column = tuple[str, str, Formatter]  # header, frame column, formatter
NA = "n/a"
WIDTH = 100  # wrap prose to this many columns; tables are as wide as their columns


def fixed(digits: int, scale: float = 1.0) -> Formatter:
    """A number with `digits` decimals after multiplying by `scale`, or n/a."""

    def fmt(value: Any) -> str:
        v = number(value)
        return NA if v is None else f"{v * scale:.{digits}f}"

    return fmt


def factor(value: Any) -> str:
    """A ratio such as "3.10×"."""
    v = number(value)
    return NA if v is None else f"{v:.2f}×"


def signed(value: Any) -> str:
    """A correlation such as "+0.83"."""
    v = number(value)
    return NA if v is None else f"{v:+.2f}"


def signed_percent(value: Any) -> str:
    """A relative error such as "+12.5 %"."""
    v = number(value)
    return NA if v is None else f"{v * 100:+.1f} %"


def text(value: Any) -> str:
    return NA if value is None or value != value else str(value)


def percent(value: Any) -> str:
    return units.percent(value)


def integer(value: Any) -> str:
    return units.integer(value)


def si_flop(value: Any) -> str:
    return units.si(value, "FLOP")


def si_bytes(value: Any) -> str:
    return units.si(value, "B")


def table(frame: pd.DataFrame, columns: Sequence[Column]) -> list[str]:
    """Aligned lines: text columns left, numbers right, a rule under the header; a column
    the frame lacks (another part's, not computed here) is left out."""
    columns = [c for c in columns if c[1] in frame.columns]
    cells = [[fmt(row[col]) for _, col, fmt in columns] for _, row in frame.iterrows()]
    heads = [head for head, _, _ in columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(heads)]
    left = [fmt is text for _, _, fmt in columns]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.ljust(w) if lt else v.rjust(w) for v, w, lt in zip(values, widths, left, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return [line(heads), line(["-" * w for w in widths])] + [line(r) for r in cells]


MODEL_COLUMNS: list[Column] = [
    ("model", "model", text),
    ("FLOPs", "flops", si_flop),
    ("FLOP/B", "intensity", fixed(1)),
    ("p50 ms", "p50_ms", fixed(3)),
    ("GFLOP/s", "achieved_gflops", fixed(2)),
    ("eff", "efficiency", percent),
    ("bound", "bound", text),
    ("roof", "roof_level", text),
    ("slowdown", "slowdown", factor),
    ("note", "bound_note", text),
    ("vs fit", "residual", factor),
    ("flag", "flag", text),
    ("kernel ms", "kernel_predicted_ms", fixed(3)),
    ("lo", "kernel_lo_ms", fixed(3)),
    ("hi", "kernel_hi_ms", fixed(3)),
    ("k err", "kernel_error", signed_percent),
    ("kernel note", "kernel_note", text),
]
PREDICTED_COLUMNS: list[Column] = [
    ("#", "rank", integer),
    ("model", "model", text),
    ("predicted ms", "predicted_ms", fixed(3)),
    ("lo", "lo_ms", fixed(3)),
    ("hi", "hi_ms", fixed(3)),
    ("FLOPs-only ms", "flops_only_ms", fixed(3)),
    ("guessed op types", "missing", text),
    ("note", "note", text),
]
MODEL_OPS_COLUMNS: list[Column] = [
    ("op type", "op_type", text),
    ("nodes", "nodes", integer),
    ("time", "time_share", percent),
    ("FLOPs", "flop_share", percent),
    ("excess", "excess_share", percent),
    ("bytes", "bytes", si_bytes),
    ("GFLOP/s", "gflops", fixed(2)),
    ("bound", "bound", text),
]
TOP_OPS = 5  # operators shown per model
OP_COLUMNS: list[Column] = [
    ("#", "rank", integer),
    ("op type", "op_type", text),
    ("nodes", "nodes", integer),
    ("time", "time_share", percent),
    ("FLOPs", "flop_share", percent),
    ("excess", "excess_share", percent),
    ("GFLOP/s", "gflops", fixed(2)),
    ("bytes", "bytes", si_bytes),
    ("FLOP/B", "intensity", fixed(1)),
    ("fused", "fused_nodes", integer),
]
CROSS_COLUMNS: list[Column] = [
    ("model", "model", text),
    ("device", "device", text),
    ("vs", "reference", text),
    ("latency", "latency_ratio", factor),
    ("peak", "peak_ratio", factor),
    ("roofline", "roofline_ratio", factor),
    ("gap", "gap", factor),
]


def _device_header(fit: Any, models: pd.DataFrame) -> list[str]:
    head = models.iloc[0]
    setting = f"{short_provider(head['provider'])}, {text(head['threads'])} threads, "
    setting += f"opt {text(head['opt_level'])}"
    lines = [f"== {fit['device']}: {fit['host']} [{setting}] =="]
    if number(fit["spearman"]) is not None:
        lines.append(
            f"FLOPs vs p50 over {fit['models']} models: Spearman {signed(fit['spearman'])}, "
            f"Kendall tau-b {signed(fit['kendall_tau_b'])}"
        )
    if number(fit["fit_b"]) is not None:
        r2 = fixed(3)(fit["r2"])
        lines.append(
            f"fit: ln(p50 ms) = {fit['fit_a']:.3f} + {fit['fit_b']:.3f}·ln(FLOPs), R² = {r2}"
        )
    else:
        lines.append(str(fit["note"]))
    return lines


def _section(title: str, items: Sequence[str]) -> list[str]:
    """A titled bullet list, each item wrapped to WIDTH with a hanging indent."""
    if not items:
        return []
    lines = ["", f"== {title} =="]
    for item in items:
        lines += textwrap.wrap(item, WIDTH, initial_indent="- ", subsequent_indent="  ")
    return lines


def latency_lines(report: Report) -> list[str]:
    """Model × device, each cell "p50/p90" in ms, "!" after an invalid one; the fastest valid
    model per device; then why each invalid cell is invalid."""
    latency = report.latency
    if latency.empty:
        return ["latency: no ok results"]
    devices = sorted(set(latency["device"]))
    by_key = {(r.device, r.model): r for r in latency.itertuples()}
    grid = []
    for model in sorted(set(latency["model"])):
        row: dict[str, Any] = {"model": model}
        for device in devices:
            hit = by_key.get((device, model))
            row[device] = _latency_cell(hit)
        grid.append(row)
    columns: list[Column] = [("model", "model", text)]
    columns += [(d, d, _as_is) for d in devices]
    lines = ["== latency: p50/p90 ms per model and device (! invalid) =="]
    lines += table(pd.DataFrame(grid), columns)
    lines += textwrap.wrap(fastest_line(latency, report.fastest), WIDTH, subsequent_indent="  ")
    for r in latency.itertuples():
        if r.invalid_reasons:
            lines += textwrap.wrap(
                f"{r.model} on {r.device}: {r.invalid_reasons}", WIDTH,
                initial_indent="- ", subsequent_indent="  ",
            )  # fmt: skip
    return lines


def model_ops_lines(report: Report) -> list[str]:
    """Each profiled model's top operators by excess time (part O's tables["model_ops"])."""
    ops = report.tables.get("model_ops")
    if ops is None or ops.empty or not {"device", "model"} <= set(ops.columns):
        return []
    lines = []
    for (device, model), rows in ops.groupby(["device", "model"], sort=True):
        lines += ["", f"== operators of {model} on {device}, by excess time =="]
        lines += table(rows.head(TOP_OPS), MODEL_OPS_COLUMNS)
    return lines


def predicted_lines(report: Report) -> list[str]:
    """Unmeasured models (--predict) per device, fastest first."""
    predicted = report.predicted
    if predicted is None:
        return []
    lines = ["", "== Predicted (not measured): kernel predictor, fastest first per device =="]
    if predicted.empty:
        return [*lines, "no device of this report has a predictor (see missing)"]
    for device, rows in predicted.groupby("device", sort=True):
        ranked = rows.sort_values("rank", na_position="last", kind="stable")
        lines += [f"-- {device} --", *table(ranked, PREDICTED_COLUMNS)]
    return lines


def _as_is(value: Any) -> str:
    return str(value)


def _latency_cell(row: Any) -> str:
    if row is None or number(row.p50_ms) is None:
        return NA
    return f"{units.ms(row.p50_ms)}/{units.ms(row.p90_ms)}" + ("" if row.valid else " !")


def render_text(report: Report) -> str:
    """The whole report as text for a terminal (about 100 columns wide)."""
    title = f"campaign {report.campaign}" if report.campaign else "all results"
    lines = [f"flopgap report: {title}", ""]
    lines += latency_lines(report)
    lines += [""]
    lines += textwrap.wrap(f"FLOPs convention: {report.convention}", WIDTH, subsequent_indent="  ")
    lines += textwrap.wrap(f"validity: {report.validity.describe()}", WIDTH, subsequent_indent="  ")
    for fit in report.fits.to_dict(orient="records"):
        models = report.models[report.models["device"] == fit["device"]]
        models = models.sort_values("flops", na_position="last", kind="stable")
        lines += ["", *_device_header(fit, models), *table(models, MODEL_COLUMNS)]
    for device, ops in report.op_types.groupby("device", sort=True):
        lines += ["", f"== op types on {device}: time share vs FLOP share =="]
        lines += table(ops, OP_COLUMNS)
    lines += model_ops_lines(report)
    lines += predicted_lines(report)
    if not report.cross_device.empty:
        lines += ["", "== across devices: latency ratio vs peak FLOP/s ratio =="]
        lines += table(report.cross_device, CROSS_COLUMNS)
    lines += _section("calibration used", report.calibration_used)
    threshold = f"beyond {report.threshold:g}× of the fit"
    lines += _section(f"findings ({threshold})", report.findings())
    lines += _section("missing", report.missing)
    lines += _section("notes", report.notes)
    return "\n".join(lines) + "\n"
