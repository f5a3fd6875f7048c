"""``MainWindow``: navigation plus the Dashboard, Wallet and Settings pages; closes to the tray."""

from __future__ import annotations

from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QMainWindow, QStackedWidget, QWidget

from app.bootstrap import Services
from app.ui.pages.dashboard import DashboardPage
from app.ui.pages.settings import SettingsPage
from app.ui.pages.wallet import WalletPage
from app.ui.theme import app_icon
from app.ui.viewmodels.app_status import AppStatusViewModel


class MainWindow(QMainWindow):
    """Receives the services once; gives each page only the view-model it needs."""

    hidden_to_tray = Signal()
    closed = Signal()

    def __init__(
        self, services: Services, status: AppStatusViewModel, *, tray_available: bool
    ) -> None:
        super().__init__()
        self._services = services
        self._tray_available = tray_available
        self.setWindowTitle("cocoon-provider")
        self.setWindowIcon(app_icon())
        self.resize(QSize(980, 680))
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.nav = QListWidget()
        self.nav.setObjectName("Nav")
        self.nav.setFixedWidth(190)
        self.pages = QStackedWidget()
        self.dashboard = DashboardPage(status)
        self.wallet = WalletPage()
        self.settings = SettingsPage(services.settings)
        for title, page in (
            ("Dashboard", self.dashboard),
            ("Wallet", self.wallet),
            ("Settings", self.settings),
        ):
            self.nav.addItem(title)
            self.pages.addWidget(page)
        self.nav.currentRowChanged.connect(self.pages.setCurrentIndex)
        self.nav.setCurrentRow(0)
        layout.addWidget(self.nav)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        close_to_tray = self._services.settings.current.value.general.close_to_tray
        if self._tray_available and close_to_tray:
            event.ignore()
            self.hide()
            self.hidden_to_tray.emit()
            return
        event.accept()
        self.closed.emit()
