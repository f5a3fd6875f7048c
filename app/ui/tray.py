"""``TrayIcon``: the system-tray icon with Show and Quit, the status as its tooltip, and a desktop
notification when a payout lands in the owner's wallet."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QWidget

from app.bootstrap import AppStatus
from app.core.money import format_ton
from app.ui.theme import app_icon
from app.ui.viewmodels.app_status import AppStatusViewModel

_PHASES = {
    "stopped": "not earning",
    "starting": "starting",
    "earning": "earning",
    "paused": "paused (GPU temperature or power cap)",
    "stopping": "stopping",
    "failed": "could not start",
}


class TrayIcon(QSystemTrayIcon):
    """Owned by the GUI runner; ``on_quit`` is the only way the app really quits from the tray."""

    def __init__(
        self,
        window: QWidget,
        status: AppStatusViewModel,
        on_quit: Callable[[], None],
        *,
        notify_payouts: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__(app_icon())
        self._window = window
        self._notify_payouts = notify_payouts
        # What was paid when the app started: only payouts that land while it runs are news.
        self._paid_seen = status.status.earnings.paid_nanoton
        self.notifications: list[tuple[str, str]] = []  # what was shown, for the tests
        self._menu = QMenu()
        self.show_action = self._menu.addAction("Show cocoon-provider")
        self.show_action.triggered.connect(self.show_window)
        self._menu.addSeparator()
        self.quit_action = self._menu.addAction("Quit")
        self.quit_action.triggered.connect(on_quit)
        self.setContextMenu(self._menu)
        self.activated.connect(self._on_activated)
        status.changed.connect(self._show_status)
        self._show_status(status.status)

    def show_window(self) -> None:
        self._window.showNormal()
        self._window.raise_()
        self._window.activateWindow()

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.show_window()

    def _show_status(self, status: AppStatus) -> None:
        self._notify_payout(status.earnings.paid_nanoton)
        earning = status.earning
        lines = [
            f"cocoon-provider — {_PHASES.get(earning.phase, earning.phase)} ({status.network})"
        ]
        if earning.serving is not None:
            lines.append(f"{earning.serving.served} served · {earning.serving.active} running")
        if status.hottest_gpu_c is not None:
            lines.append(f"GPU {status.hottest_gpu_c} °C")
        self.setToolTip("\n".join(lines))

    def _notify_payout(self, paid: int) -> None:
        landed, self._paid_seen = paid - self._paid_seen, max(paid, self._paid_seen)
        if landed <= 0 or not self._notify_payouts():
            return
        title = "Payout received"
        text = f"+{format_ton(landed, trim=True)} TON landed in your wallet."
        self.notifications.append((title, text))
        if self.isVisible() and self.supportsMessages():
            self.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information)
