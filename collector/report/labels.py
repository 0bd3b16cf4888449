"""Point labels that never overprint: greedy placement among candidate offsets, in display
(pixel) coordinates, falling back to a number listed in a legend table under the figure.

Why: at fleet size (20 models and a dozen op types on one roofline) fixed offsets stack names
on top of each other and the figure says nothing. Each label is measured once, tried at each
candidate offset around its point (nearest first), and kept at the first spot inside the axes
that meets no earlier label, no marker and no legend. A label that fits nowhere becomes its
point's number; a number that fits nowhere is not drawn, and the legend table still lists it.
The boxes actually drawn (as the renderer measured them) are returned, so a test can check
that no two intersect.

Call after the figure's layout is final (tight_layout, legend, limits): placement reads the
axes' transforms, and anything that moves the axes afterwards would move the boxes too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels (y up)
FONT_SIZE = 7
PAD_PX = 1.0  # clearance kept between a new label and everything already placed
MARKER_PX = 3.5  # half-size of the box a marker occupies
# (dx, dy) from the point in pixels, nearest spots first; the sign picks the alignment.
_STEPS = (5, 11, 18)
_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1), (1, 0), (-1, 0))
CANDIDATES = tuple((sx * s, sy * s) for s in _STEPS for sx, sy in _DIRECTIONS)


@dataclass
class Labels:
    """What placement drew: every label's box, and the points labelled by number (or not at
    all) as (number, name); a number "" means it could not be drawn either."""

    boxes: list[Box] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)


def intersects(a: Box, b: Box) -> bool:
    """Whether two boxes overlap by more than a touching edge."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _grow(box: Box, pad: float) -> Box:
    return (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad)


def _box_at(px: float, py: float, dx: float, dy: float, w: float, h: float) -> Box:
    """The box of a w × h label whose anchor sits at (px + dx, py + dy), aligned away from
    the point (left of it when dx < 0, centred when dx == 0, and likewise in y)."""
    x0 = px + dx if dx > 0 else px + dx - w if dx < 0 else px - w / 2
    y0 = py + dy if dy > 0 else py + dy - h if dy < 0 else py - h / 2
    return (x0, y0, x0 + w, y0 + h)


def _inside(box: Box, frame: Box) -> bool:
    return box[0] >= frame[0] and box[1] >= frame[1] and box[2] <= frame[2] and box[3] <= frame[3]


class Placer:
    """Places labels on one axes; several calls (models, then op types) share what is taken."""

    def __init__(self, ax: Any, obstacles: Iterable[Box] = ()) -> None:
        self.ax = ax
        self.renderer = ax.figure.canvas.get_renderer()
        extent = ax.get_window_extent(self.renderer)
        self.frame: Box = (extent.x0, extent.y0, extent.x1, extent.y1)
        self.taken: list[Box] = list(obstacles)
        self.labels = Labels()
        self._probe = ax.text(0, 0, "", fontsize=FONT_SIZE, transform=None)

    def markers(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        """Reserve the space the markers at these data points occupy."""
        for px, py in self._display(xs, ys):
            self.taken.append(_grow((px, py, px, py), MARKER_PX))

    def place(self, xs: Sequence[float], ys: Sequence[float], names: Sequence[str]) -> None:
        """Label each point with its name, or its number, or list it only."""
        for (px, py), (x, y), name in zip(
            self._display(xs, ys), zip(xs, ys, strict=True), names, strict=True
        ):
            if self._try(px, py, x, y, str(name)):
                continue
            number = str(len(self.labels.legend) + 1)
            drawn = self._try(px, py, x, y, number)
            self.labels.legend.append((number if drawn else "", str(name)))

    def finish(self) -> Labels:
        """The labels drawn; removes the measuring probe."""
        self._probe.remove()
        return self.labels

    def _display(self, xs: Sequence[float], ys: Sequence[float]) -> list[tuple[float, float]]:
        if len(xs) == 0:
            return []
        points = self.ax.transData.transform(np.column_stack([xs, ys]).astype(float))
        return [(float(p[0]), float(p[1])) for p in points]

    def _size(self, text: str) -> tuple[float, float]:
        self._probe.set_text(text)
        extent = self._probe.get_window_extent(self.renderer)
        return float(extent.width), float(extent.height)

    def _try(self, px: float, py: float, x: float, y: float, text: str) -> bool:
        w, h = self._size(text)
        scale = 72.0 / self.ax.figure.dpi  # pixels -> points for the offset
        for dx, dy in CANDIDATES:
            box = _box_at(px, py, dx, dy, w, h)
            if not _inside(box, self.frame):
                continue
            padded = _grow(box, PAD_PX)
            if any(intersects(padded, other) for other in self.taken):
                continue
            note = self.ax.annotate(
                text, (x, y), xytext=(dx * scale, dy * scale), textcoords="offset points",
                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                va="bottom" if dy > 0 else "top" if dy < 0 else "center",
                fontsize=FONT_SIZE, annotation_clip=False,
            )  # fmt: skip
            extent = note.get_window_extent(self.renderer)
            drawn: Box = (float(extent.x0), float(extent.y0), float(extent.x1), float(extent.y1))
            self.taken.append(_grow(drawn, PAD_PX / 2))
            self.labels.boxes.append(drawn)
            return True
        return False


def extent_box(artist: Any, renderer: Any) -> Box:
    """An artist's box in display pixels (a legend, say, to keep labels off it)."""
    extent = artist.get_window_extent(renderer)
    return (float(extent.x0), float(extent.y0), float(extent.x1), float(extent.y1))
