"""``GpuPanel``: the dashboard's live GPU section — a card per GPU, the guard's pause, energy.

It observes one :class:`TelemetryViewModel` and nothing else. States without GPU readings (CPU
only, driver not loaded, monitoring unavailable) replace the cards with an explanation.
"""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.engine.guard import GuardState
from app.engine.telemetry import TelemetrySnapshot
from app.ui.pages.page import Card
from app.ui.viewmodels.telemetry import EnergyView, TelemetryViewModel
from app.ui.widgets import gpu_readout as readout
from app.ui.widgets.gpu_card import GpuCard


class GpuPanel(QWidget):
    """Per-GPU cards with charts, the thermal guard's state and the energy card."""

    def __init__(self, telemetry: TelemetryViewModel, *, window_s: float = 600.0) -> None:
        super().__init__()
        self._vm = telemetry
        self._window_s = window_s
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)
        header = QHBoxLayout()
        title = QLabel("GPUs")
        title.setObjectName("CardTitle")
        header.addWidget(title)
        header.addStretch(1)
        self.status_line = QLabel()
        self.status_line.setObjectName("Muted")
        header.addWidget(self.status_line)
        layout.addLayout(header)
        self.pause_banner = QLabel()
        self.pause_banner.setWordWrap(True)
        self.pause_banner.setObjectName("PauseBanner")
        self.pause_banner.hide()
        layout.addWidget(self.pause_banner)
        self.guard_line = QLabel()
        self.guard_line.setObjectName("Muted")
        self.guard_line.setWordWrap(True)
        self.guard_line.hide()
        layout.addWidget(self.guard_line)
        self.notice_banner = QLabel()
        self.notice_banner.setWordWrap(True)
        self.notice_banner.setObjectName("NoticeBanner")
        self.notice_banner.hide()
        layout.addWidget(self.notice_banner)
        self.state_card = _StateCard()
        layout.addWidget(self.state_card)
        self._cards_box = QVBoxLayout()
        self._cards_box.setSpacing(12)
        layout.addLayout(self._cards_box)
        self.cards: dict[int, GpuCard] = {}
        self.energy_card = Card("Energy", "—")
        self.energy_card.hide()
        layout.addWidget(self.energy_card)
        layout.addStretch(1)  # extra height goes below the panel, not between its rows
        telemetry.snapshot_changed.connect(self._show_snapshot)
        telemetry.guard_changed.connect(self._show_guard)
        telemetry.energy_changed.connect(self._show_energy)
        self._show_snapshot(telemetry.snapshot)

    # -- slots --------------------------------------------------------------------------------
    def _show_snapshot(self, snapshot: TelemetrySnapshot) -> None:
        self.status_line.setText(readout.status_text(snapshot))
        self.status_line.setToolTip(snapshot.hint)
        headline = readout.headline(snapshot)
        self.state_card.setVisible(headline is not None)
        if headline is not None:
            self.state_card.show_headline(headline)
        self._sync_cards(snapshot)
        caps = self._vm.caps
        for reading in snapshot.gpus:
            self.cards[reading.index].show_reading(
                reading, caps, self._vm.history(reading.index), snapshot.taken_at
            )
        guard = self._vm.guard_state
        if guard is not None:
            self._show_guard(guard)  # the pause sentence quotes the latest temperatures
        if self._vm.energy is not None:
            self._show_energy(self._vm.energy)

    def _show_guard(self, guard: GuardState) -> None:
        snapshot = self._vm.snapshot
        lines = readout.pause_lines(guard, self._vm.caps, snapshot)
        self.pause_banner.setText("\n".join(lines))
        self.pause_banner.setVisible(bool(lines))
        # "Waiting" and "CPU only" sentences add nothing next to the state card; limits do.
        within_limits = guard.accepting and bool(snapshot.gpus)
        self.guard_line.setText(f"Taking new requests: {guard.reason}" if within_limits else "")
        self.guard_line.setVisible(within_limits)
        self.notice_banner.setText(guard.notice)
        self.notice_banner.setVisible(bool(guard.notice))

    def _show_energy(self, view: EnergyView) -> None:
        # Without a GPU there is no energy counter: "0.0 Wh" would read as a measurement.
        snapshot = self._vm.snapshot
        measured = view.totals.measured_mj > 0
        self.energy_card.setVisible(measured or bool(snapshot.gpus))
        if not measured and not readout.energy_measurable(snapshot):
            self.energy_card.show_value(readout.NOT_REPORTED, readout.ENERGY_UNMEASURABLE)
            return
        self.energy_card.show_value(*readout.energy_lines(view))

    def _sync_cards(self, snapshot: TelemetrySnapshot) -> None:
        """Keep one card per GPU in the snapshot, in index order, reusing existing cards."""
        wanted = [r.index for r in snapshot.gpus]
        for index in [i for i in self.cards if i not in wanted]:
            card = self.cards.pop(index)
            self._cards_box.removeWidget(card)
            card.deleteLater()
        for position, index in enumerate(wanted):
            if index not in self.cards:
                self.cards[index] = GpuCard(index, window_s=self._window_s)
                self._cards_box.insertWidget(position, self.cards[index])


class _StateCard(QFrame):
    """The explanation shown instead of GPU cards ("CPU only — slow", driver not loaded, …)."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("Card")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 14)
        layout.setSpacing(4)
        self.title = QLabel()
        self.detail = QLabel()
        self.detail.setObjectName("Muted")
        self.detail.setWordWrap(True)
        layout.addWidget(self.title)
        layout.addWidget(self.detail)
        self._tone: readout.Tone | None = None

    def show_headline(self, headline: readout.Headline) -> None:
        self.title.setText(headline.title)
        self.detail.setText(headline.detail)
        self.detail.setVisible(bool(headline.detail))
        if headline.tone != self._tone:
            self._tone = headline.tone
            colour = readout.TONE_COLOURS[headline.tone]
            self.title.setStyleSheet(f"color: {colour}; font-size: 20px; font-weight: 600;")
