"""The GUI runner: one QApplication, one qasync loop on the main thread, window, tray, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QSystemTrayIcon

from app.bootstrap import Services
from app.ui.crash import install_crash_handlers, uninstall_crash_handlers
from app.ui.dialogs.modal import run_modal
from app.ui.main_window import MainWindow
from app.ui.qt_async import QEventLoop
from app.ui.theme import app_icon, style_sheet
from app.ui.tray import TrayIcon
from app.ui.viewmodels.bundle import ViewModels

_log = logging.getLogger(__name__)

SMOKE_TEST_SECONDS = 1.0


def run_gui(services: Services, *, smoke_test: bool = False) -> int:
    """Show the app until the user quits (tray → Quit, or closing the window without a tray)."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
    app.setApplicationName("cocoon-provider")
    app.setQuitOnLastWindowClosed(False)  # a tray app: closing a dialog must not stop the loop
    app.setWindowIcon(app_icon())
    app.setStyleSheet(style_sheet())
    previous_crash = install_crash_handlers(services.paths.crash_log)
    try:
        with asyncio.Runner(loop_factory=lambda: QEventLoop(app)) as runner:
            return runner.run(
                _run(app, services, smoke_test=smoke_test, previous_crash=previous_crash)
            )
    finally:
        uninstall_crash_handlers()


async def _run(
    app: QApplication, services: Services, *, smoke_test: bool, previous_crash: str | None
) -> int:
    quit_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, quit_requested.set)
    # Python only sees signals when the interpreter runs; a cheap timer keeps it running.
    heartbeat = QTimer()
    heartbeat.start(250)
    heartbeat.timeout.connect(lambda: None)
    view_models = ViewModels.build(services)
    tray_available = QSystemTrayIcon.isSystemTrayAvailable()
    window = MainWindow(services.settings, view_models, tray_available=tray_available)
    tray = TrayIcon(
        window,
        view_models.status,
        on_quit=quit_requested.set,
        notify_payouts=lambda: services.settings.current.value.general.notify_payouts,
    )
    window.closed.connect(quit_requested.set)
    if tray_available:
        tray.show()
    window.show()
    if previous_crash and not smoke_test:
        # Awaited like every dialog (no nested exec() loop); services start once it is read.
        notice = QMessageBox(
            QMessageBox.Icon.Information,
            "cocoon-provider stopped unexpectedly last time",
            "The previous run crashed. The report was saved next to the log "
            "file (crash.previous.log).",
            QMessageBox.StandardButton.Ok,
            window,
        )
        await run_modal(notice)
        notice.deleteLater()
    try:
        await services.start()
        if services.settings.current.value.general.start_earning_on_launch and not smoke_test:
            await view_models.earning.start()
        if smoke_test:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(quit_requested.wait(), SMOKE_TEST_SECONDS)
            _log.info("smoke test passed: services started and the window was shown")
        else:
            await quit_requested.wait()
        return 0
    finally:
        heartbeat.stop()
        await view_models.aclose()
        await services.aclose()
        tray.hide()
        window.hide()
        window.deleteLater()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
