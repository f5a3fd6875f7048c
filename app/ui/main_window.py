"""``MainWindow``: navigation plus the Dashboard, Wallet and Settings pages; closes to the tray."""

from __future__ import annotations

from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QMainWindow,
    QScrollArea,
    QStackedWidget,
    QWidget,
)

from app.core.settings_store import SettingsStore
from app.ui.pages.dashboard import DashboardPage
from app.ui.pages.settings import SettingsPage
from app.ui.pages.wallet import WalletPage
from app.ui.theme import app_icon
from app.ui.viewmodels.bundle import ViewModels


class MainWindow(QMainWindow):
    """Gets the settings store and the view-models once; each page gets only what it needs."""

    hidden_to_tray = Signal()
    closed = Signal()

    def __init__(
        self, settings: SettingsStore, view_models: ViewModels, *, tray_available: bool
    ) -> None:
        super().__init__()
        self._settings = settings
        self._tray_available = tray_available
        self.setWindowTitle("cocoon-provider")
        self.setWindowIcon(app_icon())
        self.resize(QSize(1060, 760))
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.nav = QListWidget()
        self.nav.setObjectName("Nav")
        self.nav.setFixedWidth(190)
        self.pages = QStackedWidget()
        self.dashboard = DashboardPage(
            view_models.status, view_models.telemetry, view_models.earning, view_models.payouts
        )
        self.wallet = WalletPage(view_models.wallet, view_models.payouts)
        self.settings = SettingsPage(settings)
        for title, page in (
            ("Dashboard", self.dashboard),
            ("Wallet", self.wallet),
            ("Settings", self.settings),
        ):
            self.nav.addItem(title)
            self.pages.addWidget(_scrollable(page))
        self.nav.currentRowChanged.connect(self.pages.setCurrentIndex)
        self.nav.setCurrentRow(0)
        layout.addWidget(self.nav)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if self._tray_available and self._settings.current.value.general.close_to_tray:
            event.ignore()
            self.hide()
            self.hidden_to_tray.emit()
            return
        event.accept()
        self.closed.emit()


def _scrollable(page: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setWidget(page)
    return area
