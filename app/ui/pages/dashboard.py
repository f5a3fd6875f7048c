"""``DashboardPage``: what the worker is doing right now — status, GPU, jobs and earnings."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel

from app.bootstrap import AppStatus
from app.engine.telemetry import TelemetrySnapshot
from app.ui.pages.page import Card, Page
from app.ui.viewmodels.app_status import AppStatusViewModel
from app.ui.viewmodels.telemetry import TelemetryViewModel
from app.ui.widgets.gpu_panel import GpuPanel
from app.ui.widgets.gpu_readout import summary

_NETWORK_LABEL = {
    "devnet": "Local test network (no real money)",
    "testnet": "TON testnet",
    "mainnet": "TON mainnet",
    "custom": "Custom network",
}


class DashboardPage(Page):
    """Shows the app status; the engine, GPU, job and earnings cards fill in as services report.

    With a ``telemetry`` view-model it also shows the live :class:`GpuPanel` below the cards.
    """

    def __init__(
        self, status: AppStatusViewModel, telemetry: TelemetryViewModel | None = None
    ) -> None:
        super().__init__("Dashboard", "Your PC serves AI requests and earns TON while it is on.")
        self._status = status
        top = QHBoxLayout()
        self.network_label = QLabel()
        self.network_label.setObjectName("Muted")
        top.addWidget(self.network_label)
        top.addStretch(1)
        self.body.addLayout(top)
        grid = QGridLayout()
        grid.setSpacing(16)
        self.status_card = Card("Status", "Starting…")
        self.gpu_card = Card("GPU", "—", "Waiting for the first sample")
        self.jobs_card = Card("Jobs served", "0")
        self.earnings_card = Card("Earned today", "0 TON")
        for index, card in enumerate(
            (self.status_card, self.gpu_card, self.jobs_card, self.earnings_card)
        ):
            grid.addWidget(card, index // 2, index % 2)
        self.body.addLayout(grid)
        self.gpu_panel: GpuPanel | None = None
        if telemetry is not None:
            self.gpu_panel = GpuPanel(telemetry)
            self.body.addWidget(self.gpu_panel)
            telemetry.snapshot_changed.connect(self._show_gpu)
            self._show_gpu(telemetry.snapshot)
        status.changed.connect(self._show)
        self._show(status.status)

    def _show(self, status: AppStatus) -> None:
        self.network_label.setText(_NETWORK_LABEL.get(status.network, status.network))
        self.status_card.show_value(status.phase.capitalize(), self._status.summary())

    def _show_gpu(self, snapshot: TelemetrySnapshot) -> None:
        self.gpu_card.show_value(*summary(snapshot))
