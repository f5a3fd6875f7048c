"""``EarningsChart``: the dashboard card of TON earned per hour (last 24 h) or per day (last 30
days), with the rate over the last hour and today / this week / all time beside it.

It only shows an :class:`EarningsHistory` handed to :meth:`EarningsChart.show_history`; the
dashboard reads it (at most every 5 s). The bars reuse ``TimeSeriesChart``'s frame, grid and
hover; values are drawn in TON and every label goes through ``format_ton``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QComboBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout

from app.core.money import format_ton
from app.ui.viewmodels.earnings_history import DAY, HOUR, Bucket, EarningsHistory
from app.ui.widgets import chart_geometry as geometry
from app.ui.widgets.chart import ChartSeries, TimeSeriesChart

EARNED_COLOUR = "#1f9d55"
RANGE_DAY = "Last 24 h"
RANGE_MONTH = "Last 30 days"
_NANO = 1e9
_GRID = QColor("#eef0f2")
_AXIS_TEXT = QColor("#6b7280")
_AXIS_GAP = 6


def _ton(value: float) -> str:
    return format_ton(round(value * _NANO), trim=True)


class BarChart(TimeSeriesChart):
    """One series as bars of ``bucket_s`` seconds each, its axis in TON."""

    def __init__(self, window_s: float, bucket_s: float) -> None:
        super().__init__(window_s=window_s)
        self.bucket_s = bucket_s
        self.axis_labels = ("", "", "")
        self.setMinimumHeight(140)

    def configure(self, window_s: float, bucket_s: float, labels: tuple[str, str, str]) -> None:
        self._window_s, self.bucket_s, self.axis_labels = window_s, bucket_s, labels
        self._now = None  # the next set_data repaints

    def _plot_rect(self, metrics: QFontMetrics) -> QRectF:
        label_w = metrics.horizontalAdvance("0.000000") + _AXIS_GAP
        return QRectF(label_w, 10, self.width() - label_w - 8, self.height() - 10 - 20)

    def _draw_grid(
        self, painter: QPainter, metrics: QFontMetrics, plot: QRectF, left: ChartSeries, *_: object
    ) -> None:
        low, high = geometry.axis_range(left.points, left.low, left.high, None)
        text_h = metrics.height()
        for step in range(geometry.GRID_LINES + 1):
            fraction = step / geometry.GRID_LINES
            y = plot.bottom() - fraction * plot.height()
            painter.setPen(QPen(_GRID, 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(_AXIS_TEXT)
            box = QRectF(0, y - text_h / 2, plot.left() - _AXIS_GAP, text_h)
            align = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            painter.drawText(box, align, _ton(low + fraction * (high - low)))

    def _draw_time_axis(self, painter: QPainter, metrics: QFontMetrics, plot: QRectF) -> None:
        painter.setPen(_AXIS_TEXT)
        for fraction, text in zip((0.0, 0.5, 1.0), self.axis_labels, strict=True):
            width = metrics.horizontalAdvance(text)
            x = plot.left() + fraction * plot.width() - fraction * width
            painter.drawText(QPointF(x, plot.bottom() + metrics.ascent() + 4), text)

    def _draw_line(
        self,
        painter: QPainter,
        plot: QRectF,
        now: float,
        series: ChartSeries,
        value_range: tuple[float, float],
    ) -> None:
        start = now - self._window_s
        width = plot.width() * self.bucket_s / self._window_s
        gap = min(3.0, width * 0.25)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(series.color))
        for t, value in series.points:
            if not value:
                continue
            x = plot.left() + (t - start) / self._window_s * plot.width()
            top = geometry.value_to_y(value, value_range, plot)
            painter.drawRect(QRectF(x + gap / 2, top, width - gap, plot.bottom() - top))

    def _draw_legend(self, *_: object) -> None:
        """The figures beside the chart say what it shows: no legend inside."""

    def hover_text(self, x: float) -> str | None:
        """The bucket under the pointer: its UTC hour or day and what it earned."""
        now, plot, left = self._now, self._plot_rect(self._chart_metrics()), self._left
        if now is None or left is None or not plot.left() <= x <= plot.right():
            return None
        at = now - self._window_s + (x - plot.left()) / plot.width() * self._window_s
        for t, value in left.points:
            if t <= at < t + self.bucket_s:
                moment = datetime.fromtimestamp(t, UTC)
                when = moment.strftime("%H:00 UTC" if self.bucket_s < DAY else "%a %d %b")
                return f"{when} · {format_ton(round((value or 0) * _NANO), trim=True, unit=True)}"
        return None


class Total:
    """A caption over a value in the figures column."""

    def __init__(self, grid: QGridLayout, row: int, caption: str, tip: str) -> None:
        self.caption = QLabel(caption)
        self.caption.setObjectName("CardTitle")
        self.caption.setContentsMargins(0, 8 if row else 0, 0, 0)
        self.value = QLabel("—")
        self.value.setObjectName("MetricValue")
        self.value.setStyleSheet("font-size: 16px; font-weight: 600;")
        self.value.setToolTip(tip)
        grid.addWidget(self.caption, row * 2, 0)
        grid.addWidget(self.value, row * 2 + 1, 0)


class EarningsChart(QFrame):
    """The card: a range choice, the bars and the rate and totals column."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("Card")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 14)
        layout.setSpacing(8)
        top = QHBoxLayout()
        self.title = QLabel("Earned per hour")
        self.title.setObjectName("CardTitle")
        top.addWidget(self.title)
        top.addStretch(1)
        self.range_choice = QComboBox()
        self.range_choice.addItems([RANGE_DAY, RANGE_MONTH])
        self.range_choice.setToolTip("What the chart shows (UTC hours or days)")
        top.addWidget(self.range_choice)
        layout.addLayout(top)
        row = QHBoxLayout()
        row.setSpacing(20)
        self.chart = BarChart(24 * HOUR, HOUR)
        row.addWidget(self.chart, 1)
        figures = QGridLayout()
        figures.setVerticalSpacing(2)
        self.rate = Total(figures, 0, "Rate", "Earned in the last 60 minutes")
        self.today = Total(figures, 1, "Today", "Since 00:00 UTC")
        self.week = Total(figures, 2, "This week", "Since Monday 00:00 UTC")
        self.all_time = Total(figures, 3, "All time", "Everything the proxies counted")
        figures.setRowStretch(8, 1)
        row.addLayout(figures)
        layout.addLayout(row)
        self._history: EarningsHistory | None = None
        self.range_choice.currentIndexChanged.connect(self._redraw)

    @property
    def history(self) -> EarningsHistory | None:
        return self._history

    def show_history(self, history: EarningsHistory) -> None:
        self._history = history
        self.rate.value.setText(history.rate_text)
        for total, nanoton in (
            (self.today, history.today_nanoton),
            (self.week, history.week_nanoton),
            (self.all_time, history.all_time_nanoton),
        ):
            total.value.setText(format_ton(nanoton, trim=True, unit=True))
        self._redraw()

    def buckets(self) -> tuple[Bucket, ...]:
        """The buckets the chart shows now (the range chosen)."""
        if self._history is None:
            return ()
        monthly = self.range_choice.currentText() == RANGE_MONTH
        return self._history.daily if monthly else self._history.hourly

    def _redraw(self) -> None:
        history, buckets = self._history, self.buckets()
        if history is None or not buckets:
            self.chart.clear()
            return
        if self.range_choice.currentText() == RANGE_MONTH:
            self.title.setText("Earned per day (UTC)")
            self.chart.configure(30 * DAY, DAY, ("30 days ago", "15 days ago", "today"))
        else:
            self.title.setText("Earned per hour (UTC)")
            self.chart.configure(24 * HOUR, HOUR, ("24 h ago", "12 h ago", "now"))
        end = buckets[-1][0] + self.chart.bucket_s
        points = tuple((t, nanoton / _NANO) for t, nanoton in buckets)
        self.chart.set_data(end, ChartSeries("Earned", "TON", EARNED_COLOUR, points, 0.0, 0.001))
