"""The report as ONE self-contained HTML file: figures inlined as base64 PNG data URIs, CSS
inline, no script and no external URL, so it can be mailed or archived and still open offline.
A Content-Security-Policy forbids any fetch, so a stray external reference fails visibly."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import pandas as pd

from collector.report.plots import Plot, make_plots
from collector.report.report import Report, records

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1200px; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
h3 { font-size: 1em; margin: 1em 0 0; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; } td.text { text-align: left; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figcaption, .skipped { font-size: 0.85em; color: #555; }
.convention { font-size: 0.8em; color: #555; }
.missing li { color: #8a4b00; }
.validity { font-weight: bold; }
.scroll { overflow-x: auto; }
"""
TABLE_TITLES = {
    "models": "Models per device (medians over repeats; residual = p50 / fit prediction)",
    "fits": "FLOPs vs latency per device (rank correlations and log-log fit)",
    "op_types": "Op types per device (time share vs FLOP share, worst excess first)",
    "cross_device": "Across devices (latency ratio vs peak FLOP/s ratio)",
    "calibration": "Calibration used (latest per agent and thread count)",
}


def _cell(value: Any) -> str:
    if value is None:
        return '<td class="na">n/a</td>'
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f'<td class="text">{html.escape(str(value))}</td>'
    return f"<td>{value:.4g}</td>" if isinstance(value, float) else f"<td>{value}</td>"


def html_table(table: pd.DataFrame) -> str:
    """An escaped HTML table; a missing value shows as n/a."""
    if table.empty:
        return '<p class="skipped">no rows</p>'
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(_cell(v) for v in row.values()) + "</tr>" for row in records(table)
    )
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def _figure(plot: Plot) -> str:
    if plot.png is None:
        return (
            f'<p class="skipped">{html.escape(plot.title)}: skipped: {html.escape(plot.note)}</p>'
        )
    data = base64.b64encode(plot.png).decode("ascii")
    title = html.escape(plot.title)
    return (
        f'<figure id="{html.escape(plot.name)}"><img src="data:image/png;base64,{data}" '
        f'alt="{title}"><figcaption>{title}</figcaption></figure>'
    )


def _figures(plots: list[Plot]) -> str:
    """Fleet figures first, then one block per device under its own heading."""
    parts, group = [], "fleet"
    for plot in plots:
        if plot.group != group:
            group = plot.group
            parts.append(f"<h3>{html.escape(group)}</h3>")
        parts.append(_figure(plot))
    return "\n".join(parts)


def _list(title: str, items: list[str], css: str = "") -> str:
    if not items:
        return ""
    lis = "".join(f"<li>{html.escape(i)}</li>" for i in items)
    return f'<h2>{html.escape(title)}</h2><ul class="{css}">{lis}</ul>'


def render_html(report: Report) -> str:
    """The whole report as an HTML document string."""
    name = f"campaign {report.campaign}" if report.campaign else "all results"
    parts = [
        f"<h1>flopgap report: {html.escape(name)}</h1>",
        f'<p class="convention">FLOPs convention: {html.escape(report.convention)}</p>',
        f'<p class="validity">validity: {html.escape(report.validity.describe())}</p>',
        _list("Calibration used", report.calibration_used),
        _list(f"Findings (beyond {report.threshold:g}× of the fit)", report.findings()),
        _list("Missing", report.missing, "missing"),
        "<h2>Figures</h2>",
        _figures(make_plots(report)),
    ]
    for key, table in report.tables.items():
        parts += [f"<h2>{html.escape(TABLE_TITLES[key])}</h2>", html_table(table)]
    parts.append(_list("Notes", report.notes))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>flopgap report: {html.escape(name)}</title><style>{STYLE}</style></head>\n"
        "<body>\n" + "\n".join(p for p in parts if p) + "\n</body></html>\n"
    )


def write_html(report: Report, path: Path | str) -> Path:
    """Write the self-contained HTML report to `path`; returns it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(report), encoding="utf-8")
    return target
