"""`flopgap report`: where FLOPs mispredict latency, per device, per model and per op type.

``build_report(store, ...)`` reads a campaign from the collector's store;
``build_report_from_frames(...)`` runs the same analysis on frames from anywhere (see
``frames`` for their columns). Renderers: ``render_text``, ``write_html``, ``write_png_dir``,
``write_csv_dir`` and ``Report.to_json``. matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from collector.report.defaults import DEFAULT_THRESHOLD

if TYPE_CHECKING:
    from collector.report.build import build_report, build_report_from_frames
    from collector.report.plots import write_png_dir
    from collector.report.render_html import write_html
    from collector.report.report import Report, write_csv_dir
    from collector.report.text import render_text

__all__ = [
    "DEFAULT_THRESHOLD",
    "Report",
    "build_report",
    "build_report_from_frames",
    "render_text",
    "write_csv_dir",
    "write_html",
    "write_png_dir",
]

# Where each public name lives. They load on first use (PEP 562), so `flopgap status`, which
# registers the `report` subcommand's flags, does not import pandas.
_HOMES = {
    "Report": "report",
    "build_report": "build",
    "build_report_from_frames": "build",
    "render_text": "text",
    "write_csv_dir": "report",
    "write_html": "render_html",
    "write_png_dir": "plots",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"collector.report.{home}"), name)
