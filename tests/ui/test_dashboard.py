"""The dashboard's Start earning button drives the real earning controller (mock backend)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.devnet.mock_backend import MockBackend, MockBackendConfig
from app.ui.pages.dashboard import DashboardPage
from app.ui.viewmodels.bundle import ViewModels
from tests.polling import eventually
from tests.service_builder import build_test_services

MODEL = "Qwen/Qwen3-8B"


@pytest.fixture
async def backend() -> AsyncIterator[MockBackend]:
    mock = MockBackend(MockBackendConfig(model=MODEL))
    await mock.start()
    yield mock
    await mock.aclose()


async def _until(check: Callable[[], bool]) -> None:
    # pytest-asyncio's loop is not Qt's: Qt timers fire only when we process Qt events.
    await eventually(check, pump=QApplication.processEvents)


async def test_start_serve_and_stop_from_the_dashboard(
    qtbot: QtBot, tmp_path: Path, backend: MockBackend
) -> None:
    services = build_test_services(tmp_path, backend_url=backend.url, model=MODEL)
    models = ViewModels.build(services)
    page = DashboardPage(models.status, models.telemetry, models.earning)
    qtbot.addWidget(page)
    await services.start()
    try:
        assert page.start_button.text() == "Start earning"
        page.toggle_earning()
        await _until(lambda: page.phase_label.text() == "Earning")
        assert page.start_button.text() == "Stop"
        assert page.status_card.value.text() == "Your server"
        local = services.local_network
        assert local is not None
        await _until(lambda: local.proxy.models() == [MODEL])
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        url = f"{local.client_api.url}/v1/chat/completions"
        async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
            assert response.status == 200
        await _until(lambda: page.jobs_table.rowCount() == 1)
        assert page.jobs_card.value.text() == "1"
        result = page.jobs_table.item(0, 5)
        assert result is not None
        assert result.text() == "OK"
        page.toggle_earning()
        await _until(lambda: page.phase_label.text() == "Not earning")
        assert page.start_button.text() == "Start earning"
    finally:
        await models.aclose()
        await services.aclose()


@pytest.mark.allow_log_warnings
async def test_a_failed_start_is_shown(qtbot: QtBot, tmp_path: Path) -> None:
    services = build_test_services(tmp_path, backend_url="http://127.0.0.1:9", model=MODEL)
    models = ViewModels.build(services)
    page = DashboardPage(models.status, models.telemetry, models.earning)
    qtbot.addWidget(page)
    await services.start()
    try:
        page.toggle_earning()
        await _until(lambda: page.phase_label.text() == "Could not start")
        assert "not answering" in page.message_label.text()
        assert page.start_button.text() == "Start earning"
        assert page.start_button.isEnabled()
    finally:
        await models.aclose()
        await services.aclose()
