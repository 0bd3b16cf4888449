"""The report's figures, each drawn on a matplotlib Figure (no pyplot global state).

Each function takes the rows it plots and returns a Figure; deciding whether there is enough
to plot is plots.py's job. Axes are log-log where the quantity spans orders of magnitude.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, FuncFormatter, LogLocator, NullFormatter

from collector.report import labels, units
from collector.report.roofline import number

FLAG_COLORS = {"slower": "#c0392b", "faster": "#2471a3", "": "#555555"}


def short_number(value: float) -> str:
    """3 significant digits without exponent notation for cell labels; NaN as n/a."""
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _canvas(fig: Figure) -> Figure:
    """Attach an Agg canvas now: label placement measures text with its renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    return fig


def plain_log_ticks(axis: Any) -> None:
    """Log-axis ticks as plain numbers ("0.5", "2", "1000", "10M"), never "2×10⁰"; 1-2-5
    ticks when the axis spans under three decades, so a short axis still has labels."""
    low, high = sorted(axis.get_view_interval())
    decades = np.log10(high / low) if low > 0 else 10.0
    subs = (1.0,) if decades >= 3 else (1.0, 2.0, 5.0)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(units.tick))
    axis.set_minor_formatter(NullFormatter())


def _finish_axes(ax: Any) -> None:
    """Freeze the limits autoscaling chose, make the ticks plain, then lay out: after this
    nothing moves the axes, so label boxes computed next are the ones in the PNG."""
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    plain_log_ticks(ax.xaxis)
    plain_log_ticks(ax.yaxis)
    ax.figure.tight_layout()


def scatter_fit(
    device: str, models: pd.DataFrame, fit: dict[str, Any]
) -> tuple[Figure, labels.Labels]:
    """FLOPs vs p50 per model on one device, log-log, with the fitted power law; returns the
    figure and the label boxes placed on it."""
    fig = _canvas(Figure(figsize=(6.4, 4.4), dpi=100))
    ax = fig.add_subplot()
    x, y = models["flops"].astype(float), models["p50_ms"].astype(float)
    colors = [FLAG_COLORS.get(str(f), FLAG_COLORS[""]) for f in models["flag"]]
    ax.scatter(x, y, c=colors, zorder=3, s=16)
    a, b = number(fit.get("fit_a")), number(fit.get("fit_b"))
    title = f"{device}: FLOPs vs p50"
    if a is not None and b is not None:
        grid = np.geomspace(x.min() / 1.5, x.max() * 1.5, 50)
        ax.plot(grid, np.exp(a + b * np.log(grid)), color="#888888", lw=1, label="fit")
        r2 = number(fit.get("r2"))
        title += f" (slope {b:.2f}" + (f", R² {r2:.2f})" if r2 is not None else ")")
    ax.set(xscale="log", yscale="log", xlabel="FLOP per inference", ylabel="p50 latency (ms)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    _finish_axes(ax)
    placer = labels.Placer(ax)
    placer.markers(list(x), list(y))
    placer.place(list(x), list(y), [str(m) for m in models["model"]])
    return fig, placer.finish()


def roofline_plot(
    device: str, models: pd.DataFrame, ops: pd.DataFrame, roofs: dict[str, float] | None = None
) -> tuple[Figure, labels.Labels]:
    """The device's roofs (peak, DRAM bandwidth and each measured cache level's) with models
    (circles) and op types (triangles) at their intensity and achieved GFLOP/s; returns the
    figure and the label boxes placed on it. `roofs` maps a level ("L1", "DRAM") to GB/s."""
    peak = float(models["peak_gflops"].dropna().iloc[0])
    bw = float(models["bandwidth_gbs"].dropna().iloc[0])
    roofs = dict(roofs or {})
    roofs.setdefault("DRAM", bw)
    fig = _canvas(Figure(figsize=(6.4, 4.8), dpi=100))
    ax = fig.add_subplot()
    points = pd.concat([models["intensity"], ops.get("intensity", pd.Series(dtype=float))])
    values = [v for v in map(number, points) if v] + [peak / r for r in roofs.values()]
    grid = np.geomspace(min(values) / 4, max(values) * 4, 200)
    for level, gbs in sorted(roofs.items(), key=lambda kv: -kv[1]):
        dram = level == "DRAM"
        ax.plot(
            grid, np.minimum(peak, grid * gbs), label=f"{level} roof {gbs:.3g} GB/s",
            color="black" if dram else None, lw=1.5 if dram else 1.0, ls="-" if dram else "--",
        )  # fmt: skip
    ax.axvline(peak / bw, color="#aaaaaa", ls=":", lw=1)
    placed = models.dropna(subset=["intensity", "achieved_gflops"])
    mx, my = placed["intensity"].astype(float), placed["achieved_gflops"].astype(float)
    ax.scatter(mx, my, color="#2471a3", label="models", zorder=3, s=16)
    op_points = ops.dropna(subset=["intensity", "gflops"]) if not ops.empty else ops
    if not op_points.empty:
        op_points = op_points[op_points["gflops"].astype(float) > 0]
    ox = op_points["intensity"].astype(float) if not op_points.empty else pd.Series(dtype=float)
    oy = op_points["gflops"].astype(float) if not op_points.empty else pd.Series(dtype=float)
    if not op_points.empty:
        ax.scatter(ox, oy, marker="^", color="#d35400", label="op types", zorder=3, s=16)
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP/byte)", ylabel="GFLOP/s")
    ax.set_title(f"{device}: roofline (peak {peak:.3g} GFLOP/s, DRAM {bw:.3g} GB/s)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    _finish_axes(ax)
    legend = ax.legend(fontsize=7, loc="lower right")
    placer = labels.Placer(ax)
    placer.taken.append(labels.extent_box(legend, placer.renderer))
    placer.markers(list(mx) + list(ox), list(my) + list(oy))
    placer.place(list(mx), list(my), [str(m) for m in placed["model"]])
    if not op_points.empty:
        placer.place(list(ox), list(oy), [str(o) for o in op_points["op_type"]])
    return fig, placer.finish()


def share_bars(device: str, ops: pd.DataFrame, top: int = 12) -> Figure:
    """Time share beside FLOP share per op type, the biggest time shares first."""
    ops = ops.sort_values("time_share", ascending=True, kind="stable").tail(top)
    fig = Figure(figsize=(6.4, max(2.4, 0.9 + 0.32 * len(ops))), dpi=100)
    ax = fig.add_subplot()
    pos = np.arange(len(ops))
    time = ops["time_share"].astype(float).fillna(0) * 100
    flops = ops["flop_share"].astype(float) * 100
    ax.barh(pos + 0.2, time, height=0.4, color="#c0392b", label="time share")
    ax.barh(pos - 0.2, flops.fillna(0), height=0.4, color="#2471a3", label="FLOP share")
    for p, f in zip(pos, flops, strict=True):
        if np.isnan(f):
            ax.annotate("FLOPs n/a", (0, p - 0.2), fontsize=7, va="center")
    ax.set_yticks(pos, [str(o) for o in ops["op_type"]], fontsize=8)
    ax.set_xlabel("% of the device's total")
    ax.set_title(f"{device}: time share vs FLOP share per op type", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def heatmap(models: pd.DataFrame) -> Figure:
    """Device x model achieved GFLOP/s; a blank cell is a missing value, not a zero."""
    grid = models.pivot_table(
        index="model", columns="device", values="achieved_gflops", aggfunc="first", dropna=False
    )
    return _heatmap(grid.astype(float), None, "achieved GFLOP/s per model and device")


def latency_heatmap(latency: pd.DataFrame) -> Figure:
    """Model x device p50 ms (p90 is in the table); an invalid cell's number ends in "*"."""
    grid = latency.pivot_table(
        index="model", columns="device", values="p50_ms", aggfunc="first", dropna=False
    )
    valid = latency.pivot_table(
        index="model", columns="device", values="valid", aggfunc="first", dropna=False
    )
    marks = valid.reindex(index=grid.index, columns=grid.columns).map(lambda v: v is False)
    title = "p50 latency (ms) per model and device"
    if marks.to_numpy().any():
        title += " (* invalid, kept for view)"
    return _heatmap(grid.astype(float), marks.to_numpy(dtype=bool), title)


def _heatmap(grid: pd.DataFrame, marks: np.ndarray | None, title: str) -> Figure:
    """Rows are models, columns devices (a fleet has more models than boards); log colours
    when the values span over a decade."""
    rows, cols = grid.shape
    fig = Figure(figsize=(max(4.5, 0.85 * cols + 2.6), 1.3 + 0.24 * rows), dpi=100)
    ax = fig.add_subplot()
    values = grid.to_numpy()
    finite = values[np.isfinite(values) & (values > 0)]
    norm = LogNorm() if finite.size and finite.max() > 10 * finite.min() else None
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", aspect="auto", norm=norm)
    for (i, j), value in np.ndenumerate(values):
        shade = image.cmap(image.norm(value)) if np.isfinite(value) else (1.0, 1.0, 1.0, 1.0)
        dark = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] < 0.5
        mark = "*" if marks is not None and marks[i, j] else ""
        ax.text(
            j, i, short_number(value) + mark, ha="center", va="center", fontsize=7,
            color="white" if dark else "black",
        )  # fmt: skip
    ax.set_xticks(range(cols), [str(c) for c in grid.columns], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(rows), [str(i) for i in grid.index], fontsize=8)
    bar = fig.colorbar(image, ax=ax)
    if norm is not None:
        bar.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    bar.ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    bar.ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
