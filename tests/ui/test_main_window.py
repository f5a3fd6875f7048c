"""The main window with real widgets (offscreen): pages, settings editing, close-to-tray, tray."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QLineEdit, QScrollArea, QSpinBox
from pytestqt.qtbot import QtBot

from app.bootstrap import EarningsSummary, Services
from app.core.settings_store import SettingsStore
from app.ui.main_window import MainWindow
from app.ui.pages.settings import SettingsPage
from app.ui.tray import TrayIcon
from app.ui.viewmodels.app_status import AppStatusViewModel
from app.ui.viewmodels.bundle import ViewModels
from tests.service_builder import build_test_services


@pytest.fixture
def services(tmp_path: Path) -> Services:
    return build_test_services(tmp_path)


@pytest.fixture
async def view_models(services: Services) -> AsyncIterator[ViewModels]:
    models = ViewModels.build(services)
    yield models
    await models.aclose()


@pytest.fixture
def window(qtbot: QtBot, services: Services, view_models: ViewModels) -> MainWindow:
    win = MainWindow(services.settings, view_models, tray_available=True)
    qtbot.addWidget(win)
    return win


def test_pages_and_navigation(window: MainWindow) -> None:
    assert [window.nav.item(i).text() for i in range(window.nav.count())] == [
        "Dashboard",
        "Wallet",
        "Settings",
    ]
    window.nav.setCurrentRow(2)
    area = window.pages.currentWidget()
    assert isinstance(area, QScrollArea)
    assert area.widget() is window.settings
    assert "Local test network" in window.dashboard.network_label.text()


async def test_status_changes_reach_the_dashboard(window: MainWindow, services: Services) -> None:
    await services.start()
    try:
        assert window.dashboard.phase_label.text() == "Not earning"
        assert window.dashboard.status_card.value.text() == "Stopped"
        assert window.dashboard.start_button.text() == "Start earning"
        assert "proxy 127.0.0.1:" in window.dashboard.network_label.text()
    finally:
        await services.aclose()
    assert services.status.value.phase == "stopped"


def test_close_hides_to_tray(qtbot: QtBot, window: MainWindow) -> None:
    window.show()
    with qtbot.waitSignal(window.hidden_to_tray):
        window.close()
    assert not window.isVisible()


def test_close_without_tray_quits(
    qtbot: QtBot, services: Services, view_models: ViewModels
) -> None:
    win = MainWindow(services.settings, view_models, tray_available=False)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.closed):
        win.close()


def test_tray_show_and_quit(qtbot: QtBot, window: MainWindow, services: Services) -> None:
    quits: list[bool] = []
    tray = TrayIcon(window, AppStatusViewModel(services), on_quit=lambda: quits.append(True))
    tray.show_action.trigger()
    assert window.isVisible()
    tray.quit_action.trigger()
    assert quits == [True]
    assert "devnet" in tray.toolTip()


def test_settings_page_saves_valid_values(qtbot: QtBot, services: Services) -> None:
    page = SettingsPage(services.settings)
    qtbot.addWidget(page)
    spins = [w for w in page.findChildren(QSpinBox) if "temperature" in w.toolTip().lower()]
    spins[0].setValue(72)
    assert page.save()
    assert services.settings.current.value.engine.temperature_cap_c == 72
    assert (
        SettingsStore.load(services.paths.settings_file).current.value.engine.temperature_cap_c
        == 72
    )


def test_settings_page_reports_bad_values_and_keeps_file(qtbot: QtBot, services: Services) -> None:
    page = SettingsPage(services.settings)
    qtbot.addWidget(page)
    services.settings.save()
    before = services.paths.settings_file.read_bytes()
    amount = next(w for w in page.findChildren(QLineEdit) if "first send" in w.toolTip())
    amount.setText("lots")
    assert not page.save()
    assert "wallet.large_first_send_nanoton" in page.message.text()
    assert services.paths.settings_file.read_bytes() == before


def test_the_tray_notifies_when_a_payout_lands_unless_turned_off(
    qtbot: QtBot, window: MainWindow, services: Services
) -> None:
    wanted = [True]
    status = AppStatusViewModel(services)  # kept: the tray listens to its signal
    tray = TrayIcon(window, status, on_quit=lambda: None, notify_payouts=lambda: wanted[0])
    before = services.status.value

    def paid(nanotons: int) -> None:
        money = EarningsSummary(paid_nanoton=nanotons)
        services.status.set(dataclasses.replace(before, earnings=money))

    paid(800_000_000)
    assert tray.notifications == [("Payout received", "+0.8 TON landed in your wallet.")]
    paid(800_000_000)  # nothing new
    wanted[0] = False
    paid(900_000_000)
    assert len(tray.notifications) == 1
    status.close()
