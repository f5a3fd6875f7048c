"""``TimeSeriesChart``: a light QPainter line chart of the last minutes of one or two series.

No QtCharts (PySide6-Essentials does not ship it). The chart keeps only the points inside its
time window, repaints only when :meth:`TimeSeriesChart.set_data` hands it different data, and
draws gaps where a value is missing instead of inventing a line through them.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.ui.widgets import chart_geometry as geometry

_PAD_TOP = 26  # room for the legend
_PAD_BOTTOM = 20  # room for the time labels
_AXIS_GAP = 6
_GRID = QColor("#eef0f2")
_AXIS_TEXT = QColor("#6b7280")
_CAP = QColor("#b91c1c")
_HOVER = QColor("#9ca3af")
# The hover read-out names the sample nearest the pointer if it lies within this many pixels.
_HOVER_REACH_PX = 8


@dataclass(frozen=True, slots=True)
class ChartSeries:
    """One line: ``points`` are (monotonic seconds, value or None), oldest first.

    ``low``/``high`` are the axis range; values outside it widen the axis rather than vanish.
    """

    label: str
    unit: str
    color: str
    points: tuple[tuple[float, float | None], ...]
    low: float
    high: float

    def axis_range(self, threshold: float | None) -> tuple[float, float]:
        return geometry.axis_range(self.points, self.low, self.high, threshold)


class TimeSeriesChart(QWidget):
    """Draws ``left`` against the left axis and optional ``right`` against the right axis.

    ``threshold`` draws a dashed line on the left axis (the temperature cap). Hovering shows
    the values nearest the pointer. ``paint_count`` counts real paints, so tests can check that
    repeating the same data repaints nothing.
    """

    def __init__(self, *, window_s: float = 600.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if window_s <= 0:
            raise ValueError("the chart window must be positive")
        self._window_s = window_s
        self._now: float | None = None
        self._left: ChartSeries | None = None
        self._right: ChartSeries | None = None
        self._threshold: float | None = None
        self._threshold_label = ""
        self._hover_x: float | None = None
        self.paint_count = 0
        self.setMouseTracking(True)
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, False)

    @property
    def window_s(self) -> float:
        return self._window_s

    @property
    def left(self) -> ChartSeries | None:
        return self._left

    @property
    def right(self) -> ChartSeries | None:
        return self._right

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(480, 170)

    def set_data(
        self,
        now: float,
        left: ChartSeries,
        right: ChartSeries | None = None,
        *,
        threshold: float | None = None,
        threshold_label: str = "",
    ) -> None:
        """Show the window ending at ``now``; schedules one repaint if anything changed."""
        left, right = self._clip(left, now), None if right is None else self._clip(right, now)
        state = (now, left, right, threshold, threshold_label)
        if state == (self._now, self._left, self._right, self._threshold, self._threshold_label):
            return
        self._now, self._left, self._right = now, left, right
        self._threshold, self._threshold_label = threshold, threshold_label
        self.update()  # Qt merges several updates before the next paint into one

    def clear(self) -> None:
        if self._left is None and self._right is None:
            return
        self._now = self._left = self._right = self._threshold = None
        self.update()

    def _clip(self, series: ChartSeries, now: float) -> ChartSeries:
        start = bisect.bisect_left(series.points, now - self._window_s, key=lambda p: p[0])
        if start == 0:
            return series
        return ChartSeries(
            series.label, series.unit, series.color, series.points[start:], series.low, series.high
        )

    # -- painting -----------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        self.paint_count += 1
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            metrics = self._chart_metrics()
            painter.setFont(_small(self.font()))
            left, right, now = self._left, self._right, self._now
            if left is None or now is None:
                painter.setPen(_AXIS_TEXT)
                painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No readings yet")
                return
            left_range = geometry.axis_range(left.points, left.low, left.high, self._threshold)
            right_range = (
                None
                if right is None
                else geometry.axis_range(right.points, right.low, right.high, None)
            )
            plot = self._plot_rect(metrics)
            if plot.width() < 20 or plot.height() < 20:
                return
            self._draw_grid(painter, metrics, plot, left, left_range, right, right_range)
            self._draw_time_axis(painter, metrics, plot)
            if self._threshold is not None:
                self._draw_threshold(painter, metrics, plot, left_range, self._threshold)
            self._draw_line(painter, plot, now, left, left_range)
            if right is not None and right_range is not None:
                self._draw_line(painter, plot, now, right, right_range)
            self._draw_legend(painter, metrics, plot, (left, right))
            self._draw_hover(painter, metrics, plot)
        finally:
            painter.end()

    def _plot_rect(self, metrics: QFontMetrics) -> QRectF:
        label_w = metrics.horizontalAdvance("0000 W") + _AXIS_GAP
        return QRectF(
            label_w,
            _PAD_TOP,
            self.width() - label_w - (label_w if self._right is not None else 12),
            self.height() - _PAD_TOP - _PAD_BOTTOM,
        )

    # -- hover read-out -----------------------------------------------------------------------
    def hover_text(self, x: float) -> str | None:
        """The read-out for the pointer at widget ``x``: age and each series' nearest value."""
        now, plot = self._now, self._plot_rect(self._chart_metrics())
        if now is None or plot.width() <= 0 or not plot.left() <= x <= plot.right():
            return None
        seconds_per_px = self._window_s / plot.width()
        at = now - self._window_s + (x - plot.left()) * seconds_per_px
        parts = []
        at_point = at
        for series in (self._left, self._right):
            point = None if series is None else geometry.nearest(series.points, at)
            if series is None or point is None:
                continue
            if abs(point[0] - at) <= _HOVER_REACH_PX * seconds_per_px:
                value = point[1]
                shown = "—" if value is None else f"{value:.0f} {series.unit}"
                parts.append(f"{series.label} {shown}")
                at_point = point[0]
        if not parts:
            return None
        return f"{geometry.age(now - at_point)} · " + " · ".join(parts)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        self._hover_x = event.position().x()
        self.update()

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        self._hover_x = None
        self.update()

    def _chart_metrics(self) -> QFontMetrics:
        return QFontMetrics(_small(self.font()))

    def _draw_hover(self, painter: QPainter, metrics: QFontMetrics, plot: QRectF) -> None:
        x = self._hover_x
        text = None if x is None else self.hover_text(x)
        if x is None or text is None:
            return
        painter.setPen(QPen(_HOVER, 1, Qt.PenStyle.DotLine))
        painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        width, height = metrics.horizontalAdvance(text) + 12, metrics.height() + 6
        # Keep the box inside the plot: to the right of the pointer, or to its left near the edge.
        left = x + 8 if x + 8 + width <= plot.right() else max(plot.left(), x - 8 - width)
        box = QRectF(left, plot.top() + 4, width, height)
        painter.setPen(QPen(QColor("#d1d5db"), 1))
        painter.setBrush(QColor(255, 255, 255, 235))
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(QColor("#111827"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _draw_grid(
        self,
        painter: QPainter,
        metrics: QFontMetrics,
        plot: QRectF,
        left: ChartSeries,
        left_range: tuple[float, float],
        right: ChartSeries | None,
        right_range: tuple[float, float] | None,
    ) -> None:
        text_h = metrics.height()
        for step in range(geometry.GRID_LINES + 1):
            fraction = step / geometry.GRID_LINES
            y = plot.bottom() - fraction * plot.height()
            painter.setPen(QPen(_GRID, 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(_AXIS_TEXT)
            value = left_range[0] + fraction * (left_range[1] - left_range[0])
            box = QRectF(0, y - text_h / 2, plot.left() - _AXIS_GAP, text_h)
            align = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            painter.drawText(box, align, f"{value:.0f} {left.unit}")
            if right is not None and right_range is not None:
                value = right_range[0] + fraction * (right_range[1] - right_range[0])
                box = QRectF(plot.right() + _AXIS_GAP, y - text_h / 2, plot.left(), text_h)
                align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
                painter.drawText(box, align, f"{value:.0f} {right.unit}")

    def _draw_time_axis(self, painter: QPainter, metrics: QFontMetrics, plot: QRectF) -> None:
        labels = (
            (0.0, geometry.ago(self._window_s)),
            (0.5, geometry.ago(self._window_s / 2)),
            (1.0, "now"),
        )
        painter.setPen(_AXIS_TEXT)
        for fraction, text in labels:
            width = metrics.horizontalAdvance(text)
            x = plot.left() + fraction * plot.width() - fraction * width
            painter.drawText(QPointF(x, plot.bottom() + metrics.ascent() + 4), text)

    def _draw_threshold(
        self,
        painter: QPainter,
        metrics: QFontMetrics,
        plot: QRectF,
        value_range: tuple[float, float],
        threshold: float,
    ) -> None:
        y = geometry.value_to_y(threshold, value_range, plot)
        pen = QPen(_CAP, 1.2, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        if self._threshold_label:
            width = metrics.horizontalAdvance(self._threshold_label)
            painter.drawText(QPointF(plot.right() - width - 4, y - 3), self._threshold_label)

    def _draw_line(
        self,
        painter: QPainter,
        plot: QRectF,
        now: float,
        series: ChartSeries,
        value_range: tuple[float, float],
    ) -> None:
        start = now - self._window_s
        colour = QColor(series.color)
        for run in geometry.runs(series.points):
            polygon = geometry.polyline(run, start, self._window_s, plot, value_range)
            # A thin pen takes Qt's fast path (measured ~30× cheaper than 1.8 px, antialiased);
            # a dense run's per-column extremes already fill in as thick as the wide pen.
            painter.setPen(QPen(colour, 1.0 if len(run) > plot.width() else 1.8))
            if polygon.size() == 1:
                painter.drawPoint(polygon.first())
            else:
                painter.drawPolyline(polygon)

    def _draw_legend(
        self,
        painter: QPainter,
        metrics: QFontMetrics,
        plot: QRectF,
        series: Sequence[ChartSeries | None],
    ) -> None:
        x = plot.left()
        y = (_PAD_TOP - metrics.height()) / 2 + metrics.ascent()
        for item in series:
            if item is None:
                continue
            latest = next((v for _, v in reversed(item.points) if v is not None), None)
            shown = "not reported" if latest is None else f"{latest:.0f} {item.unit}"
            text = f"{item.label}  {shown}"
            painter.setPen(QPen(QColor(item.color), 3))
            mid = y - metrics.ascent() / 2 + 1
            painter.drawLine(QPointF(x, mid), QPointF(x + 14, mid))
            painter.setPen(QColor("#30343a"))
            painter.drawText(QPointF(x + 20, y), text)
            x += 20 + metrics.horizontalAdvance(text) + 18


def _small(font: QFont) -> QFont:
    small = QFont(font)
    small.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
    return small
