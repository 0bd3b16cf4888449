"""Which figures the report can draw, and PNG bytes for each; a figure the data cannot
support is skipped with a note saying why (no calibration means no roofline, never a guessed
one). matplotlib is imported here only when drawing, and draws with Agg."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from collector.report.labels import Box, Labels
from collector.report.report import Report
from collector.report.roofline import number

CACHE_LEVELS = ("l1", "l2", "l3")  # part R's calibration columns: {level}_bandwidth_gbs


@dataclass(frozen=True)
class Plot:
    """One figure: PNG bytes, or None with the reason it was skipped."""

    name: str  # file stem, safe on any filesystem
    title: str
    png: bytes | None
    note: str = ""
    group: str = "fleet"  # "fleet", or the device key the figure belongs to
    # Point labels as drawn (display pixels of the PNG, y up), and the points labelled by a
    # number (or not at all: number "") that the legend table under the figure names.
    boxes: tuple[Box, ...] = ()
    legend: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def safe_name(text: str) -> str:
    """A file stem from a device or model key ("rpi5/t4/CPU/all" -> "rpi5_t4_CPU_all")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "plot"


def _png(draw: Callable[[], Any]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = draw()
    if figure.canvas is None or not isinstance(figure.canvas, FigureCanvasAgg):
        FigureCanvasAgg(figure)  # Agg for this figure only; no global backend switch
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi)  # the dpi the label boxes are in
    return buffer.getvalue()


def _labelled(name: str, title: str, draw: Callable[[], tuple[Any, Labels]]) -> Plot:
    """A figure whose point labels were placed: its PNG, boxes and legend."""
    drawn: list[Labels] = []

    def figure() -> Any:
        fig, placed = draw()
        drawn.append(placed)
        return fig

    png = _png(figure)
    placed = drawn[0]
    return Plot(name, title, png, boxes=tuple(placed.boxes), legend=tuple(placed.legend))


def roofs_of(calibration: pd.DataFrame, models: pd.DataFrame) -> dict[str, float]:
    """Every measured roof of the device's calibration (agent and threads of its models):
    DRAM from `bandwidth_gbs`, and L1/L2/L3 where part R's columns hold a number."""
    if calibration.empty or models.empty:
        return {}
    head = models.iloc[0]
    threads = number(head["threads"])
    match = calibration[
        (calibration["agent_id"].astype(str) == str(head["agent_id"]))
        & (calibration["threads"].map(number) == threads)
    ]
    if match.empty:
        return {}
    row = match.iloc[-1]
    roofs = {}
    for level in CACHE_LEVELS:
        value = number(row.get(f"{level}_bandwidth_gbs"))
        if value:
            roofs[level.upper()] = value
    dram = number(row.get("bandwidth_gbs"))
    if dram:
        roofs["DRAM"] = dram
    return roofs


def _device_plots(report: Report, device: str) -> list[Plot]:
    from collector.report import figures

    models = report.models[report.models["device"] == device]
    fit = report.fits[report.fits["device"] == device].to_dict(orient="records")
    ops = report.op_types[report.op_types["device"] == device]
    stem = safe_name(device)
    plots = []
    placed = models.dropna(subset=["flops", "p50_ms"])
    title = f"{device}: FLOPs vs latency"
    if placed.empty:
        plots.append(Plot(f"scatter_{stem}", title, None, "no model has both FLOPs and p50"))
    else:
        plots.append(
            _labelled(
                f"scatter_{stem}",
                title,
                lambda: figures.scatter_fit(device, placed, fit[0] if fit else {}),
            )
        )
    title = f"{device}: roofline"
    if models["peak_gflops"].dropna().empty or models["bandwidth_gbs"].dropna().empty:
        note = "no calibration (peak GFLOP/s and bandwidth) for this device: no roofline"
        plots.append(Plot(f"roofline_{stem}", title, None, note))
    else:
        roofs = roofs_of(report.calibration, models)
        plots.append(
            _labelled(
                f"roofline_{stem}",
                title,
                lambda: figures.roofline_plot(device, models, ops, roofs),
            )
        )
    title = f"{device}: time share vs FLOP share"
    if ops.empty:
        plots.append(Plot(f"op_shares_{stem}", title, None, "no per-op times for this device"))
    else:
        plots.append(
            Plot(f"op_shares_{stem}", title, _png(lambda: figures.share_bars(device, ops)))
        )
    return plots


def make_plots(report: Report) -> list[Plot]:
    """Every figure of the report, in display order: the fleet heatmaps (ms first, then
    GFLOP/s), then per device."""
    from collector.report import figures

    latency = report.latency
    title = "p50 latency (ms), model × device"
    if latency.empty or latency["p50_ms"].dropna().empty:
        plots = [Plot("heatmap_ms", title, None, "no result with a latency")]
    else:
        plots = [Plot("heatmap_ms", title, _png(lambda: figures.latency_heatmap(latency)))]
    title = "achieved GFLOP/s, model × device"
    if report.models.empty or report.models["achieved_gflops"].dropna().empty:
        plots.append(Plot("heatmap_gflops", title, None, "no result with both FLOPs and latency"))
    else:
        plots.append(Plot("heatmap_gflops", title, _png(lambda: figures.heatmap(report.models))))
    for device in sorted(set(report.models["device"])):
        plots += [replace(p, group=device) for p in _device_plots(report, device)]
    return plots


def write_png_dir(report: Report, directory: Path | str) -> list[Path]:
    """One PNG per figure, plus skipped.txt listing the figures that could not be drawn and
    why, and labels.txt naming the points a figure labelled by number (no room for the name);
    returns the paths written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written, skipped, numbered = [], [], []
    for plot in make_plots(report):
        if plot.png is None:
            skipped.append(f"{plot.name}: {plot.note}")
            continue
        path = out / f"{plot.name}.png"
        path.write_bytes(plot.png)
        written.append(path)
        numbered += [f"{plot.name}: {n or '(no room)'} = {name}" for n, name in plot.legend]
    for stem, lines in (("skipped", skipped), ("labels", numbered)):
        if lines:
            path = out / f"{stem}.txt"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            written.append(path)
    return written
