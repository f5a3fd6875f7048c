"""Axis ranges, time labels, pixel mapping and per-column decimation for ``TimeSeriesChart``.

Pure geometry over plain tuples and ``QRectF``/``QPolygonF`` values, kept apart from the widget
so the choices (nice axis steps, where a dense hour of samples is thinned) can be tested alone.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPolygonF

GRID_LINES = 4
Point = tuple[float, float | None]


def nearest(points: Sequence[Point], at: float) -> Point | None:
    """The point whose time is closest to ``at`` (points are sorted by time)."""
    if not points:
        return None
    i = bisect.bisect_left(points, at, key=lambda p: p[0])
    candidates = points[max(0, i - 1) : i + 1]
    return min(candidates, key=lambda p: abs(p[0] - at))


def age(seconds: float) -> str:
    """A hover read-out's age: "42 s ago", "3 min 05 s ago"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s ago"
    return f"{seconds // 60} min {seconds % 60:02d} s ago"


def axis_range(
    points: Sequence[Point], low: float, high: float, threshold: float | None
) -> tuple[float, float]:
    """The axis range: ``low``–``high``, widened to fit the values and the threshold."""
    values = [v for _, v in points if v is not None]
    if threshold is not None:
        values.append(threshold)
    low = min([low, *values])
    high = max([high, *values])
    if high <= low:
        high = low + 1
    # Round outward to whole grid steps of 1, 2, 2.5, 5 × 10^n so axis labels stay readable.
    span = (high - low) / GRID_LINES
    while True:
        step = nice_step(span)
        base = math.floor(low / step) * step
        if base + step * GRID_LINES >= high:
            return base, base + step * GRID_LINES
        span = step * 1.001  # the offset base left too little room: the next nicer step


def ago(seconds: float) -> str:
    """A time-axis label: minutes from two minutes up, seconds below."""
    return f"{seconds / 60:g} min ago" if seconds >= 120 else f"{seconds:g} s ago"


def nice_step(raw: float) -> float:
    """The smallest readable grid step (1, 1.25, 1.5, 2, … × 10^n) of at least ``raw``."""
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def value_to_y(value: float, value_range: tuple[float, float], plot: QRectF) -> float:
    low, high = value_range
    return plot.bottom() - (value - low) / (high - low) * plot.height()


def polyline(
    run: Sequence[tuple[float, float]],
    start: float,
    window_s: float,
    plot: QRectF,
    value_range: tuple[float, float],
) -> QPolygonF:
    """Map a run to pixels; denser than one point per pixel column, keep each column's extremes.

    An hour of 1 Hz samples is several points per pixel: drawing them all costs time for nothing
    visible, while keeping each column's lowest and highest value still shows every spike.
    """
    scale = plot.width() / window_s
    left = plot.left()
    if len(run) <= plot.width():
        return QPolygonF(
            [QPointF(left + (t - start) * scale, value_to_y(v, value_range, plot)) for t, v in run]
        )
    points: list[QPointF] = []
    column = -1
    low = high = 0.0
    for t, v in run:
        x, y = int(left + (t - start) * scale), value_to_y(v, value_range, plot)
        if x != column:
            if column >= 0:
                points += (QPointF(column, low), QPointF(column, high))
            column, low, high = x, y, y
        else:
            low, high = min(low, y), max(high, y)
    points += (QPointF(column, low), QPointF(column, high))
    return QPolygonF(points)


def runs(
    points: Sequence[tuple[float, float | None]],
) -> list[list[tuple[float, float]]]:
    """Split the points into runs without missing values (a gap breaks the line)."""
    runs: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for t, v in points:
        if v is None:
            if current:
                runs.append(current)
                current = []
            continue
        current.append((t, v))
    if current:
        runs.append(current)
    return runs
