"""The report as ONE self-contained HTML file: figures inlined as base64 PNG data URIs, CSS
inline, one small inline script (sortable tables) allowed by its sha256 hash and no external
URL, so it can be mailed or archived and still open offline. The Content-Security-Policy
forbids any fetch and any other script, so a stray external reference fails visibly.

Layout for a fleet: the latency table and the fastest-model line come first (above the fold
at 1,400 × 900 for 10 devices × 20 models), then findings and fleet figures, then one
collapsed <details> section per device with its models, figures, op types and per-model
operator breakdown. Columns other parts add (bound_note, model_ops) show when present.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from collector.report.latency import fastest_line
from collector.report.plots import Plot, make_plots
from collector.report.report import Report, records
from collector.report.units import cell, ms

SORT_SCRIPT = (
    "document.querySelectorAll('table.sortable th').forEach(function (th) {"
    "th.addEventListener('click', function () {"
    "var body = th.closest('table').tBodies[0], i = th.cellIndex,"
    " dir = th.dataset.dir === 'asc' ? -1 : 1;"
    "th.dataset.dir = dir === 1 ? 'asc' : 'desc';"
    "Array.prototype.slice.call(body.rows).sort(function (a, b) {"
    "var x = a.cells[i].dataset.sort || a.cells[i].textContent,"
    " y = b.cells[i].dataset.sort || b.cells[i].textContent,"
    " nx = parseFloat(x), ny = parseFloat(y);"
    "return (isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny) * dir;"
    "}).forEach(function (r) { body.appendChild(r); });});});"
)
SCRIPT_HASH = base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; script-src 'sha256-{SCRIPT_HASH}'; img-src data:; "
    "style-src 'unsafe-inline'"
)
STYLE = """
body { font-family: system-ui, sans-serif; margin: 0.8em 1.2em; color: #222; max-width: 1360px; }
h1 { font-size: 1.25em; margin: 0.2em 0; } h2 { font-size: 1.05em; margin: 1.2em 0 0.3em; }
h3 { font-size: 0.95em; margin: 0.8em 0 0; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.78em; margin: 0.3em 0 0.8em; }
th, td { border: 1px solid #ccc; padding: 1px 5px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; cursor: pointer; } td.text { text-align: left; }
td small { color: #777; } td.invalid { background: #fbeaea; color: #8a1f11; }
td.fastest { font-weight: bold; background: #e6f4ea; }
figure { display: inline-block; margin: 0.3em; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; }
figcaption, .skipped, .small { font-size: 0.8em; color: #555; }
.fastest-line { font-weight: bold; margin: 0.3em 0; }
.missing li { color: #8a4b00; }
.scroll { overflow-x: auto; }
details { border: 1px solid #ddd; margin: 0.4em 0; padding: 0.2em 0.6em; }
summary { cursor: pointer; font-weight: bold; }
"""
TABLE_TITLES = {
    "models": "Models (medians over repeats; residual = p50 / fit prediction)",
    "fits": "FLOPs vs latency per device (rank correlations and log-log fit)",
    "op_types": "Op types (time share vs FLOP share, worst excess first)",
    "cross_device": "Across devices (latency ratio vs peak FLOP/s ratio)",
    "calibration": "Calibration used (latest per agent and thread count)",
}
MODEL_VIEW = (
    "model", "results", "valid", "flops", "bytes", "intensity", "p50_ms", "p90_ms",
    "achieved_gflops", "efficiency", "bound", "roof_level", "slowdown", "bound_note",
    "residual", "flag", "kernel_predicted_ms", "kernel_lo_ms", "kernel_hi_ms", "kernel_error",
    "kernel_note",
)  # fmt: skip
MODEL_OPS_VIEW = (
    "op_type", "nodes", "time_share", "flop_share", "excess_share", "time_us", "flops",
    "bytes", "gflops", "bound",
)  # fmt: skip
TOP_OPS = 5  # per-model breakdown rows shown


def _cell(column: str, value: Any) -> str:
    shown = html.escape(cell(column, value))
    if value is None:
        return '<td class="na">n/a</td>'
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f'<td class="text">{shown}</td>'
    return f'<td data-sort="{value!r}">{shown}</td>'


def html_table(table: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """An escaped, sortable HTML table of `columns` (those present; all by default); numbers
    as the report prints them (units.cell), a missing value as n/a."""
    if table.empty:
        return '<p class="skipped">no rows</p>'
    shown = [c for c in (columns or table.columns) if c in table.columns]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown)
    body = "".join(
        "<tr>" + "".join(_cell(c, row[c]) for c in shown) + "</tr>"
        for row in records(table.loc[:, shown])
    )
    return (
        f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def latency_html(report: Report) -> str:
    """Model × device: p50 ms with p90 beside it; invalid cells marked, with their reasons
    as the cell's tooltip; each device's fastest valid model in bold."""
    latency = report.latency
    if latency.empty:
        return '<p class="skipped">no latency: no ok results</p>'
    devices = sorted(set(latency["device"]))
    by_key = {(r["device"], r["model"]): r for r in records(latency)}
    head = "<th>model</th>" + "".join(f"<th>{html.escape(d)}</th>" for d in devices)
    rows = []
    for model in sorted(set(latency["model"])):
        cells = [f'<td class="text">{html.escape(model)}</td>']
        for device in devices:
            cells.append(_latency_cell(by_key.get((device, model)), report.fastest.get(device)))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<div class="scroll"><table class="sortable" id="latency">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _latency_cell(row: dict[str, Any] | None, best: str | None) -> str:
    if row is None or row["p50_ms"] is None:
        return '<td class="na">n/a</td>'
    text = f"{ms(row['p50_ms'])} <small>{ms(row['p90_ms'])}</small>"
    sort = f'data-sort="{row["p50_ms"]!r}"'
    if not row["valid"]:
        reasons = html.escape(str(row["invalid_reasons"] or "invalid"))
        return f'<td class="invalid" {sort} title="{reasons}">{text} ⚠</td>'
    css = ' class="fastest"' if row["model"] == best else ""
    tip = f' title="{html.escape(row["invalid_reasons"])}"' if row["invalid_reasons"] else ""
    return f"<td{css} {sort}{tip}>{text}</td>"


def _figure(plot: Plot) -> str:
    if plot.png is None:
        return (
            f'<p class="skipped">{html.escape(plot.title)}: skipped: {html.escape(plot.note)}</p>'
        )
    data = base64.b64encode(plot.png).decode("ascii")
    title = html.escape(plot.title)
    legend = ""
    if plot.legend:
        rows = "".join(
            f'<tr><td>{html.escape(n or "–")}</td><td class="text">{html.escape(name)}</td></tr>'
            for n, name in plot.legend
        )
        legend = f'<table class="legend"><tr><th>#</th><th>point</th></tr>{rows}</table>'
    return (
        f'<figure id="{html.escape(plot.name)}"><img src="data:image/png;base64,{data}" '
        f'alt="{title}"><figcaption>{title}</figcaption>{legend}</figure>'
    )


def _list(title: str, items: list[str], css: str = "", top: int = 0) -> str:
    """A titled list; past `top` items (when set) the rest fold into a <details>."""
    if not items:
        return ""
    shown, rest = (items[:top], items[top:]) if top else (items, [])
    lis = "".join(f"<li>{html.escape(i)}</li>" for i in shown)
    more = ""
    if rest:
        extra = "".join(f"<li>{html.escape(i)}</li>" for i in rest)
        more = f'<details><summary>{len(rest)} more</summary><ul class="{css}">{extra}</ul>'
        more += "</details>"
    return f'<h2>{html.escape(title)}</h2><ul class="{css}">{lis}</ul>{more}'


def _folded(title: str, body: str, rows: int) -> str:
    """A fleet table under a collapsed <details> (a 10 × 20 fleet has 180 cross-device rows)."""
    return f"<details><summary>{html.escape(title)} ({rows} rows)</summary>{body}</details>"


def _model_ops(report: Report, device: str) -> str:
    """Part O's per-model operator breakdown (tables["model_ops"]), top rows per model."""
    table = report.tables.get("model_ops")
    if table is None or table.empty or "device" not in table:
        return ""
    mine = table[table["device"] == device]
    parts = []
    for model, rows in mine.groupby("model", sort=True):
        parts.append(f"<h3>{html.escape(str(model))}: operators by excess time</h3>")
        parts.append(html_table(rows.head(TOP_OPS), MODEL_OPS_VIEW))
    return "\n".join(parts)


def _predicted(report: Report) -> str:
    """Unmeasured models (--predict) per device, fastest first."""
    table = report.predicted
    if table is None:
        return ""
    parts = ["<h2>Predicted (not measured)</h2>"]
    if table.empty:
        parts.append('<p class="skipped">no device of this report has a predictor</p>')
    for device, rows in table.groupby("device", sort=True):
        ranked = rows.sort_values("rank", na_position="last", kind="stable")
        title = f"<h3>{html.escape(str(device))}</h3>"
        parts += [title, html_table(ranked.drop(columns=["device"]))]
    return "\n".join(parts)


def _device_section(report: Report, device: str, plots: list[Plot]) -> str:
    models = report.models[report.models["device"] == device]
    host = html.escape(str(models["host"].iloc[0])) if not models.empty else ""
    best = report.fastest.get(device)
    summary = f"{html.escape(device)} <span class='small'>{host}; fastest valid: "
    summary += f"{html.escape(best or 'none')}</span>"
    fit = report.fits[report.fits["device"] == device] if "device" in report.fits else None
    parts = [f'<details class="device"><summary>{summary}</summary>']
    note = fit["note"].iloc[0] if fit is not None and not fit.empty and "note" in fit else None
    if isinstance(note, str) and note:
        parts.append(f'<p class="small">{html.escape(note)}</p>')
    parts.append(html_table(models, MODEL_VIEW))
    parts += [_figure(p) for p in plots]
    ops = report.op_types
    if "device" in ops and not ops[ops["device"] == device].empty:
        ops = ops[ops["device"] == device]
        parts += ["<h3>op types</h3>", html_table(ops.drop(columns=["device"]))]
    parts.append(_model_ops(report, device))
    parts.append("</details>")
    return "\n".join(p for p in parts if p)


def render_html(report: Report, plots: list[Plot] | None = None) -> str:
    """The whole report as an HTML document string; `plots` are make_plots(report) when the
    caller already drew them (drawing is most of the time a fleet report takes)."""
    name = f"campaign {report.campaign}" if report.campaign else "all results"
    plots = make_plots(report) if plots is None else plots
    fleet = [p for p in plots if p.group == "fleet"]
    parts = [
        f"<h1>flopgap report: {html.escape(name)}</h1>",
        f'<p class="small validity">validity: {html.escape(report.validity.describe())}</p>',
        f'<p class="fastest-line">{html.escape(fastest_line(report.latency, report.fastest))}</p>',
        '<p class="small">p50 ms <small>p90 ms</small> per model and device; ⚠ invalid '
        "(hover for why; left out of the analysis); bold: the device's fastest valid model</p>",
        latency_html(report),
        _list(f"Findings (beyond {report.threshold:g}× of the fit)", report.findings(), top=10),
        _list("Missing", report.missing, "missing", top=10),
        "<h2>Figures</h2>",
        "\n".join(_figure(p) for p in fleet),
    ]
    parts.append("<h2>Fleet tables</h2>")
    for key in ("fits", "cross_device", "calibration"):
        table = report.tables[key]
        parts.append(_folded(TABLE_TITLES[key], html_table(table), len(table)))
    parts += ["<h2>Per device</h2>", _list("Calibration used", report.calibration_used)]
    for device in sorted(set(report.models["device"])):
        parts.append(_device_section(report, device, [p for p in plots if p.group == device]))
    parts.append(_predicted(report))
    parts.append(_list("Notes", report.notes))
    parts.append(f'<p class="small">FLOPs convention: {html.escape(report.convention)}</p>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>flopgap report: {html.escape(name)}</title><style>{STYLE}</style></head>\n"
        "<body>\n" + "\n".join(p for p in parts if p) + f"\n<script>{SORT_SCRIPT}</script>"
        "\n</body></html>\n"
    )


def write_html(report: Report, path: Path | str) -> Path:
    """Write the self-contained HTML report to `path`; returns it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(report), encoding="utf-8")
    return target
