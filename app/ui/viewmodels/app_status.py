"""``AppStatusViewModel``: the app-wide status (network, phase, uptime) as a Qt signal."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from app.bootstrap import AppStatus, Services


class AppStatusViewModel(QObject):
    """Re-emits :class:`AppStatus` changes on the Qt side; lives on the GUI thread."""

    changed = Signal(object)  # AppStatus

    def __init__(self, services: Services) -> None:
        super().__init__()
        self._services = services
        self._unsubscribe = services.status.subscribe(self.changed.emit)

    @property
    def status(self) -> AppStatus:
        return self._services.status.value

    def close(self) -> None:
        self._unsubscribe()
