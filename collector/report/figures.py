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
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from collector.report.roofline import number

FLAG_COLORS = {"slower": "#c0392b", "faster": "#2471a3", "": "#555555"}


def short_number(value: float) -> str:
    """3 significant digits without exponent notation for cell labels; NaN as n/a."""
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _label(ax: Any, xs: Any, ys: Any, names: Any) -> None:
    for x, y, name in zip(xs, ys, names, strict=True):
        ax.annotate(str(name), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)


def scatter_fit(device: str, models: pd.DataFrame, fit: dict[str, Any]) -> Figure:
    """FLOPs vs p50 per model on one device, log-log, with the fitted power law."""
    fig = Figure(figsize=(6.4, 4.4), dpi=100)
    ax = fig.add_subplot()
    x, y = models["flops"].astype(float), models["p50_ms"].astype(float)
    colors = [FLAG_COLORS.get(str(f), FLAG_COLORS[""]) for f in models["flag"]]
    ax.scatter(x, y, c=colors, zorder=3)
    _label(ax, x, y, models["model"])
    a, b = number(fit.get("fit_a")), number(fit.get("fit_b"))
    title = f"{device}: FLOPs vs p50"
    if a is not None and b is not None:
        grid = np.geomspace(x.min() / 1.5, x.max() * 1.5, 50)
        ax.plot(grid, np.exp(a + b * np.log(grid)), color="#888888", lw=1, label="fit")
        r2 = number(fit.get("r2"))
        title += f" (slope {b:.2f}" + (f", R² {r2:.2f})" if r2 is not None else ")")
    ax.set(xscale="log", yscale="log", xlabel="FLOPs per inference", ylabel="p50 latency (ms)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def roofline_plot(device: str, models: pd.DataFrame, ops: pd.DataFrame) -> Figure:
    """The device's roof (peak and bandwidth) with models (circles) and op types
    (triangles) at their intensity and achieved GFLOP/s."""
    peak = float(models["peak_gflops"].dropna().iloc[0])
    bw = float(models["bandwidth_gbs"].dropna().iloc[0])
    fig = Figure(figsize=(6.4, 4.4), dpi=100)
    ax = fig.add_subplot()
    points = pd.concat([models["intensity"], ops.get("intensity", pd.Series(dtype=float))])
    values = [v for v in map(number, points) if v] + [peak / bw]
    grid = np.geomspace(min(values) / 4, max(values) * 4, 200)
    ax.plot(grid, np.minimum(peak, grid * bw), color="black", lw=1.5, label="roofline")
    ax.axvline(peak / bw, color="#aaaaaa", ls=":", lw=1)
    placed = models.dropna(subset=["intensity", "achieved_gflops"])
    ax.scatter(
        placed["intensity"].astype(float),
        placed["achieved_gflops"].astype(float),
        color="#2471a3",
        label="models",
        zorder=3,
    )
    _label(
        ax,
        placed["intensity"].astype(float),
        placed["achieved_gflops"].astype(float),
        placed["model"],
    )
    if not ops.empty:
        op_points = ops.dropna(subset=["intensity", "gflops"])
        op_points = op_points[op_points["gflops"].astype(float) > 0]
        ax.scatter(
            op_points["intensity"].astype(float),
            op_points["gflops"].astype(float),
            marker="^",
            color="#d35400",
            label="op types",
            zorder=3,
        )
        _label(
            ax,
            op_points["intensity"].astype(float),
            op_points["gflops"].astype(float),
            op_points["op_type"],
        )
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP/byte)", ylabel="GFLOP/s")
    ax.set_title(f"{device}: roofline (peak {peak:.1f} GFLOP/s, {bw:.1f} GB/s)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


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
        index="device", columns="model", values="achieved_gflops", aggfunc="first", dropna=False
    )
    grid = grid.astype(float)
    fig = Figure(figsize=(max(4.0, 1.1 * grid.shape[1] + 2), 1.2 + 0.5 * grid.shape[0]), dpi=100)
    ax = fig.add_subplot()
    values = grid.to_numpy()
    finite = values[np.isfinite(values) & (values > 0)]
    norm = LogNorm() if finite.size and finite.max() > 10 * finite.min() else None
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", aspect="auto", norm=norm)
    for (i, j), value in np.ndenumerate(values):
        shade = image.cmap(image.norm(value)) if np.isfinite(value) else (1.0, 1.0, 1.0, 1.0)
        dark = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] < 0.5
        ax.text(
            j,
            i,
            short_number(value),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if dark else "black",
        )
    ax.set_xticks(
        range(grid.shape[1]), [str(c) for c in grid.columns], rotation=30, ha="right", fontsize=8
    )
    ax.set_yticks(range(grid.shape[0]), [str(i) for i in grid.index], fontsize=8)
    bar = fig.colorbar(image, ax=ax, label="achieved GFLOP/s")
    if norm is not None:
        bar.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    bar.ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    bar.ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_title("achieved GFLOP/s per device and model", fontsize=10)
    fig.tight_layout()
    return fig
