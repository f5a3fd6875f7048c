"""``GpuCard``: one GPU's live metrics, its problem line and its chart, inside the GPU panel."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from app.engine.gpu_sample import GpuSample
from app.engine.telemetry import GpuReading, HistoryPoint
from app.ui.viewmodels.telemetry import GuardCaps
from app.ui.widgets import gpu_readout as readout
from app.ui.widgets.chart import ChartSeries, TimeSeriesChart

TEMPERATURE_COLOUR = "#e8590c"
POWER_COLOUR = "#0a84ff"
UTILISATION_COLOUR = "#7c3aed"
CHART_THERMAL = "Temperature and power"
CHART_UTILISATION = "Utilisation"
# (key, caption, grid row, grid column, column span)
_METRICS = (
    ("temperature", "Temperature", 0, 0, 1),
    ("power", "Power / limit", 0, 1, 1),
    ("utilisation", "Utilisation", 0, 2, 1),
    ("vram", "VRAM used / total", 0, 3, 1),
    ("fan", "Fan", 1, 0, 1),
    ("clocks", "Clocks core / memory", 1, 1, 1),
    ("throttle", "Slowed down by", 1, 2, 2),
)


class Metric(QWidget):
    """A small caption over a value; the value's colour carries the temperature tone."""

    def __init__(self, caption: str) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.caption = QLabel(caption)
        self.caption.setObjectName("CardTitle")
        self.value = QLabel(readout.NOT_REPORTED)
        self.value.setObjectName("MetricValue")
        self.value.setWordWrap(True)
        layout.addWidget(self.caption)
        layout.addWidget(self.value)
        self._style = ""
        self.show_value(readout.NOT_REPORTED)

    def show_value(self, text: str, tone: readout.Tone = "neutral") -> None:
        self.value.setText(text)
        self.value.setToolTip(readout.NOT_REPORTED_TIP if text == readout.NOT_REPORTED else "")
        if text == readout.NOT_REPORTED:
            tone = "muted"
        style = f"color: {readout.TONE_COLOURS[tone]}; font-size: 16px; font-weight: 600;"
        if style != self._style:  # restyling is the costly part of an update; skip it if equal
            self._style = style
            self.value.setStyleSheet(style)


class GpuCard(QFrame):
    """Shows one :class:`GpuReading`: the metrics grid, a problem line and the chart."""

    def __init__(self, index: int, *, window_s: float = 600.0) -> None:
        super().__init__()
        self.setObjectName("Card")
        self.index = index
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 14)
        layout.setSpacing(10)
        top = QHBoxLayout()
        self.title = QLabel(f"GPU {index}")
        self.title.setObjectName("GpuTitle")
        top.addWidget(self.title)
        top.addStretch(1)
        self.chart_choice = QComboBox()
        self.chart_choice.addItems([CHART_THERMAL, CHART_UTILISATION])
        self.chart_choice.setToolTip("What the chart shows")
        top.addWidget(self.chart_choice)
        layout.addLayout(top)
        self.problem = QLabel()
        self.problem.setObjectName("Problem")
        self.problem.setWordWrap(True)
        self.problem.hide()
        layout.addWidget(self.problem)
        grid = QGridLayout()
        grid.setHorizontalSpacing(24)
        grid.setVerticalSpacing(10)
        self.metrics: dict[str, Metric] = {}
        for key, caption, row, column, span in _METRICS:
            metric = Metric(caption)
            self.metrics[key] = metric
            grid.addWidget(metric, row, column, 1, span, Qt.AlignmentFlag.AlignTop)
        for column in range(4):
            grid.setColumnStretch(column, 1)
        layout.addLayout(grid)
        self.chart = TimeSeriesChart(window_s=window_s)
        layout.addWidget(self.chart)
        self._reading: GpuReading | None = None
        self._caps: GuardCaps | None = None
        self._history: tuple[HistoryPoint, ...] = ()
        self._now: float | None = None
        self.chart_choice.currentIndexChanged.connect(self._redraw_chart)

    def show_reading(
        self,
        reading: GpuReading,
        caps: GuardCaps | None,
        history: tuple[HistoryPoint, ...],
        now: float | None,
    ) -> None:
        self._reading, self._caps, self._history, self._now = reading, caps, history, now
        self.title.setText(f"GPU {reading.index} · {reading.name}")
        problem = readout.reading_problem(reading)
        self.problem.setText(problem)
        self.problem.setToolTip(reading.message)
        self.problem.setVisible(bool(problem))
        # A lost GPU's last numbers would look live; show none. A hung one keeps its last sample.
        sample = None if reading.status == "lost" else reading.sample
        self._show_metrics(sample, caps)
        self._redraw_chart()

    def _show_metrics(self, sample: GpuSample | None, caps: GuardCaps | None) -> None:
        m = self.metrics
        if sample is None:
            for metric in m.values():
                metric.show_value(readout.NOT_REPORTED)
            return
        cap = None if caps is None else caps.temperature_cap_c
        m["temperature"].show_value(
            readout.temperature_text(sample.temperature_c),
            readout.temperature_tone(sample.temperature_c, cap),
        )
        m["power"].show_value(readout.power_text(sample.power_mw, sample.power_limit_mw))
        m["utilisation"].show_value(
            readout.utilisation_text(sample.gpu_util_percent, sample.memory_util_percent)
        )
        m["vram"].show_value(readout.vram_text(sample.vram_used_bytes, sample.vram_total_bytes))
        m["fan"].show_value(readout.percent_text(sample.fan_percent))
        m["clocks"].show_value(
            readout.clocks_text(sample.graphics_clock_mhz, sample.memory_clock_mhz)
        )
        reasons = sample.throttle_reasons
        slowed = reasons is not None and any(r != "gpu_idle" for r in reasons)
        m["throttle"].show_value(readout.throttle_text(reasons), "warm" if slowed else "neutral")

    def _redraw_chart(self) -> None:
        history, now = self._history, self._now
        if not history or now is None:
            self.chart.clear()
            return
        if self.chart_choice.currentText() == CHART_UTILISATION:
            self.chart.set_data(
                now,
                ChartSeries(
                    "GPU utilisation",
                    "%",
                    UTILISATION_COLOUR,
                    tuple((p.t, _float(p.gpu_util_percent)) for p in history),
                    0,
                    100,
                ),
            )
            return
        caps = self._caps
        sample = None if self._reading is None else self._reading.sample
        limit_mw = None if sample is None else sample.power_limit_mw
        temperature = ChartSeries(
            "Temperature",
            "°C",
            TEMPERATURE_COLOUR,
            tuple((p.t, _float(p.temperature_c)) for p in history),
            20,
            100,
        )
        power = ChartSeries(
            "Power",
            "W",
            POWER_COLOUR,
            tuple((p.t, None if p.power_mw is None else p.power_mw / 1000) for p in history),
            0,
            100 if limit_mw is None else limit_mw / 1000,
        )
        self.chart.set_data(
            now,
            temperature,
            power,
            threshold=None if caps is None else caps.temperature_cap_c,
            threshold_label="" if caps is None else f"cap {caps.temperature_cap_c} °C",
        )


def _float(value: int | None) -> float | None:
    return None if value is None else float(value)
