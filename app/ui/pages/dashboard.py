"""``DashboardPage``: what the worker is doing right now — Start earning, status, GPU, jobs, and
the TON it earned, had vouchered and was paid (the payments ledger), with Cash out now and "Why am
I not earning?"."""

from __future__ import annotations

import asyncio

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from app.bootstrap import AppStatus
from app.core.money import format_ton
from app.devnet.local_network import LocalNetworkStatus
from app.engine.energy import MJ_PER_WH, economics
from app.engine.telemetry import TelemetrySnapshot
from app.network.earning import YOUR_SERVER, EarningStatus
from app.network.jobs import DayTotals, JobRecord
from app.network.pipeline import Pipeline
from app.ui.pages.page import Card, Page
from app.ui.qt_async import async_slot
from app.ui.theme import restyle
from app.ui.viewmodels.app_status import AppStatusViewModel
from app.ui.viewmodels.earning import EarningViewModel
from app.ui.viewmodels.payouts import EarningsView, PayoutViewModel
from app.ui.viewmodels.telemetry import EnergyView, TelemetryViewModel
from app.ui.widgets.earnings_chart import EarningsChart
from app.ui.widgets.earnings_panel import EarningsPanel
from app.ui.widgets.gpu_panel import GpuPanel
from app.ui.widgets.gpu_readout import net_profit_text, summary
from app.ui.widgets.jobs_table import JobsTable
from app.ui.widgets.pipeline_panel import PipelinePanel

_NETWORK_LABEL = {
    "devnet": "Local test network (no real money)",
    "testnet": "TON testnet",
    "mainnet": "TON mainnet",
    "custom": "Custom network",
}
_PHASE_TITLE = {
    "stopped": ("Not earning", "#374151"),
    "starting": ("Starting…", "#0a64d6"),
    "earning": ("Earning", "#1f9d55"),
    "paused": ("Paused", "#b45309"),
    "stopping": ("Stopping…", "#374151"),
    "failed": ("Could not start", "#b91c1c"),
}
_JOBS_REFRESH_MS = 1500
# Today's ledger figure reads the day's billed jobs from disk: at most this often.
_LEDGER_REFRESH_MS = 5000
_IDLE_REFRESH_MS = 60_000
_ENGINE_STATE = {
    "stopped": "Stopped",
    "starting": "Loading…",
    "ready": "Ready",
    "draining": "Finishing…",
    "crashed": "Restarting…",
    "failed": "Failed",
}


class DashboardPage(Page):
    """The hero row (state + Start/Stop), four cards, the earnings and pipeline panels, the GPU
    panel and the recent jobs.

    ``earning``, ``telemetry`` and ``payouts`` are optional so the page can be shown (and tested)
    alone; without ``payouts`` there is no ledger to show.
    """

    def __init__(
        self,
        status: AppStatusViewModel,
        telemetry: TelemetryViewModel | None = None,
        earning: EarningViewModel | None = None,
        payouts: PayoutViewModel | None = None,
    ) -> None:
        super().__init__("Dashboard", "Your PC serves AI requests and earns TON while it is on.")
        self._status = status
        self._earning = earning
        self._telemetry = telemetry
        self._payouts = payouts
        self._today: DayTotals | None = None
        self._earned_today: int | None = None
        self._reading = False
        self._phase_shown = ""
        self._price_shown = 0
        self._network_detail = ""
        self.network_label = QLabel()
        self.network_label.setObjectName("Muted")
        self.body.addWidget(self.network_label)
        self._build_hero()
        grid = QGridLayout()
        grid.setSpacing(16)
        self.status_card = Card("Engine", "Stopped")
        self.gpu_card = Card("GPU", "—", "Waiting for the first sample")
        self.jobs_card = Card("Jobs served today", "0")
        self.earnings_card = Card("Earned today", "—", "UTC day, from the payments ledger")
        for index, card in enumerate(
            (self.status_card, self.gpu_card, self.jobs_card, self.earnings_card)
        ):
            grid.addWidget(card, index // 2, index % 2)
        self.body.addLayout(grid)
        self.earnings_panel: EarningsPanel | None = None
        self.earnings_chart: EarningsChart | None = None
        self.pipeline_panel: PipelinePanel | None = None
        self._ledger_timer = QTimer(self)
        self._ledger_timer.setSingleShot(True)
        self._ledger_timer.setInterval(_LEDGER_REFRESH_MS)
        self._ledger_timer.timeout.connect(self._ledger_tick)
        if payouts is not None:
            self.earnings_panel = EarningsPanel(payouts)
            self.pipeline_panel = PipelinePanel(payouts.pipeline)
            self.earnings_chart = EarningsChart()
            self.body.addWidget(self.earnings_panel)
            self.body.addWidget(self.earnings_chart)
            self.body.addWidget(self.pipeline_panel)
            payouts.earnings_changed.connect(self._earnings_moved)
            payouts.pipeline_changed.connect(self._show_pipeline)
        self.gpu_panel: GpuPanel | None = None
        if telemetry is not None:
            self.gpu_panel = GpuPanel(telemetry)
            self.body.addWidget(self.gpu_panel)
            telemetry.snapshot_changed.connect(self._show_gpu)
            telemetry.energy_changed.connect(self._show_energy)
            self._show_gpu(telemetry.snapshot)
        jobs_title = QLabel("Recent jobs")
        jobs_title.setObjectName("CardTitle")
        self.body.addWidget(jobs_title)
        self.jobs_table = JobsTable()
        self.body.addWidget(self.jobs_table)
        self._jobs_timer = QTimer(self)
        self._jobs_timer.setSingleShot(True)
        self._jobs_timer.setInterval(_JOBS_REFRESH_MS)
        self._jobs_timer.timeout.connect(self.refresh_jobs)
        self._served_seen = -1
        self._app_phase = ""
        status.changed.connect(self._show)
        self._show(status.status)
        if earning is not None:
            earning.status_changed.connect(self._show_earning)
            earning.network_changed.connect(self._show_network)
            earning.jobs_changed.connect(self._show_jobs)
            self._show_earning(earning.status)
            if earning.local_network is not None:
                self._show_network(earning.local_network)
        else:
            self.start_button.setEnabled(False)

    def _build_hero(self) -> None:
        hero = QFrame()
        hero.setObjectName("Card")
        row = QHBoxLayout(hero)
        row.setContentsMargins(20, 16, 20, 16)
        text = QVBoxLayout()
        self.phase_label = QLabel("Not earning")
        self.phase_label.setObjectName("BigValue")
        self.message_label = QLabel("Press Start earning to serve requests.")
        self.message_label.setWordWrap(True)
        self.detail_label = QLabel("")
        self.detail_label.setObjectName("Muted")
        self.detail_label.setWordWrap(True)
        for label in (self.phase_label, self.message_label, self.detail_label):
            text.addWidget(label)
        row.addLayout(text, 1)
        self.start_button = QPushButton("Start earning")
        self.start_button.setObjectName("Primary")
        self.start_button.setMinimumWidth(170)
        self.start_button.clicked.connect(self.toggle_earning)
        row.addWidget(self.start_button)
        self.body.addWidget(hero)

    @async_slot()
    async def toggle_earning(self) -> None:
        if self._earning is None:
            return
        self.start_button.setEnabled(False)
        try:
            if self._earning.status.phase in {"earning", "paused", "starting"}:
                await self._earning.stop()
            else:
                await self._earning.start()
        finally:
            self.start_button.setEnabled(True)
            self._show_earning(self._earning.status)

    @async_slot()
    async def refresh_jobs(self) -> None:
        if self._earning is not None:
            await self._earning.load_jobs()

    def _ledger_tick(self) -> None:
        # A timer can outlive the app's event loop (a window left behind at shutdown): without
        # a running loop the read would be a coroutine nobody awaits.
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.refresh_ledger()

    @async_slot()
    async def refresh_ledger(self) -> None:
        await self.load_earned_today()

    async def load_earned_today(self) -> None:
        """Read today's figure and the earnings history from the payments ledger and show them
        (public: tests await it)."""
        if self._payouts is None:
            return
        self._reading = True
        try:
            earned = await self._payouts.earned_today()
            history = await self._payouts.earnings_history()
        finally:
            self._reading = False
        if history is not None and self.earnings_chart is not None:
            self.earnings_chart.show_history(history)
            if not self._ledger_timer.isActive() and self._app_phase == "running":
                # Buckets and the rate move with the clock too: re-read a minute from now at the
                # latest (new earnings start the 5 s timer sooner).
                self._ledger_timer.start(_IDLE_REFRESH_MS)
        if earned is not None:
            self._earned_today = earned
            self._show_earned()

    def _show(self, status: AppStatus) -> None:
        self._app_phase = status.phase
        if status.phase in {"stopping", "stopped"}:
            # The services are closing: nothing is left to read, and a timer firing after the
            # event loop is gone would leave its coroutine unawaited.
            self._ledger_timer.stop()
            self._jobs_timer.stop()
        first = self._earned_today is None and not self._reading and self._payouts is not None
        if first and status.phase == "running":
            self.refresh_ledger()  # the payments ledger is open now: today's figure
        if not self._network_detail:
            self.network_label.setText(_NETWORK_LABEL.get(status.network, status.network))

    def _show_earning(self, status: EarningStatus) -> None:
        if status.phase != self._phase_shown:
            # Serving figures change with every request; restyling is costly: only on a new phase.
            self._phase_shown = status.phase
            title, colour = _PHASE_TITLE[status.phase]
            self.phase_label.setText(title)
            self.phase_label.setStyleSheet(f"color: {colour};")
            running = status.phase in {"earning", "paused", "starting"}
            self.start_button.setText("Stop" if running else "Start earning")
            restyle(self.start_button, "Stop" if running else "Primary")
        self.message_label.setText(status.message)
        details = [part for part in (status.model, status.device, _sandbox(status)) if part]
        self.detail_label.setText(" · ".join(details))
        self.status_card.show_value(*_engine_card(status))
        serving = status.serving
        if serving is not None and serving.served != self._served_seen:
            self._served_seen = serving.served
            if not self._jobs_timer.isActive():
                # At most every 1.5 s: restarting it on each request starved it under load.
                self._jobs_timer.start()

    def _show_network(self, network: LocalNetworkStatus) -> None:
        if not network.running:
            self._network_detail = ""
            return
        demand = network.demand
        self._network_detail = (
            f"Local test network (no real money) · proxy {network.proxy_address} · "
            f"{demand.rate_per_minute} simulated requests/min · {demand.sent} sent"
        )
        self.network_label.setText(self._network_detail)

    def _show_jobs(self, jobs: list[JobRecord], today: DayTotals | None) -> None:
        self.jobs_table.show_jobs(jobs)
        if today is not None:
            self.jobs_card.show_value(
                str(today.succeeded), f"{today.failed} failed · {today.adjusted_tokens} tokens"
            )
            self._today = today
            self._show_earned()

    def _earnings_moved(self, _view: EarningsView) -> None:
        # Vouchers and tallies move with every request; today's figure follows, not as often.
        timer = self._ledger_timer
        if not timer.isActive() or timer.remainingTime() > _LEDGER_REFRESH_MS:
            timer.start(_LEDGER_REFRESH_MS)  # the idle minute's re-read comes sooner

    def _show_pipeline(self, pipeline: Pipeline) -> None:
        if self.pipeline_panel is not None:
            self.pipeline_panel.show_pipeline(pipeline)

    def _show_energy(self, view: EnergyView) -> None:
        # Totals change with every reading and job; the card only depends on the price.
        if view.totals.price_nanoton_per_kwh != self._price_shown:
            self._show_earned()

    def _show_earned(self) -> None:
        earned = self._earned_today
        if earned is None:
            return
        energy = self._telemetry.energy if self._telemetry is not None else None
        self._price_shown = energy.totals.price_nanoton_per_kwh if energy is not None else 0
        energy_wh = self._today.energy_wh if self._today is not None else None
        self.earnings_card.show_value(
            format_ton(earned, trim=True, unit=True),
            earned_detail(earned, energy_wh, self._price_shown),
        )

    def _show_gpu(self, snapshot: TelemetrySnapshot) -> None:
        self.gpu_card.show_value(*summary(snapshot))


def earned_detail(earned_nanoton: int, energy_wh: float | None, price_nanoton_per_kwh: int) -> str:
    """The "Earned today" card's detail: where the figure comes from, today's jobs' energy and,
    with a price, the net profit (what the proxies billed today less the electricity)."""
    parts = ["UTC day, from the payments ledger"]
    if energy_wh is None:
        parts.append("energy not measured")
        return " · ".join(parts)
    parts.append(f"{energy_wh:.2f} Wh")
    if price_nanoton_per_kwh > 0:
        energy_mj = round(energy_wh * MJ_PER_WH)
        parts.append(net_profit_text(economics(energy_mj, earned_nanoton, price_nanoton_per_kwh)))
    return " · ".join(parts)


def _engine_card(status: EarningStatus) -> tuple[str, str]:
    """The Engine card: its state in a word, then load or the reason it is not running."""
    engine, serving = status.engine, status.serving
    if status.device == YOUR_SERVER:
        state = "Your server"
    elif engine is None:
        state = "Stopped"
    else:
        state = _ENGINE_STATE.get(engine.state, engine.state.capitalize())
    if serving is not None:
        detail = (
            f"{serving.active} of {serving.max_active} slots busy · {serving.served} served · "
            f"{serving.failed} failed"
        )
    elif engine is not None and engine.reason:
        detail = engine.reason
    else:
        detail = "Starts with Start earning."
    return state, detail


def _sandbox(status: EarningStatus) -> str:
    return f"sandbox {status.sandbox.split(' — ')[0]}" if status.sandbox else ""
