"""The dashboard's Start earning button drives the real earning controller (mock backend); today's
earnings come from the payments ledger, with the energy of today's jobs and the net profit."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.core.money import parse_ton
from app.devnet.mock_backend import MockBackend, MockBackendConfig
from app.network.answer import TokensUsed
from app.network.jobs import DayTotals, JobRecord
from app.ui.pages.dashboard import DashboardPage
from app.ui.viewmodels.bundle import ViewModels
from app.ui.widgets.jobs_table import ENERGY_COLUMN, RESULT_COLUMN, energy_text
from tests.polling import eventually
from tests.service_builder import TEST_OWNER, build_test_services
from tests.ui.ledger_rig import FEE, open_proxy

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
    services = build_test_services(
        tmp_path, backend_url=backend.url, model=MODEL, owner_address=TEST_OWNER
    )
    models = ViewModels.build(services)
    page = DashboardPage(models.status, models.telemetry, models.earning, models.payouts)
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
        result = page.jobs_table.item(0, RESULT_COLUMN)
        assert result is not None
        assert result.text() == "OK"
        (stored,) = await services.jobs.recent()
        energy = page.jobs_table.item(0, ENERGY_COLUMN)
        assert energy is not None
        assert energy.text() == energy_text(stored.energy_wh)
        assert page.earnings_card.detail.text().startswith("UTC day, from the payments ledger · ")
        page.toggle_earning()
        await _until(lambda: page.phase_label.text() == "Not earning")
        assert page.start_button.text() == "Start earning"
    finally:
        await models.aclose()
        await services.aclose()


def _job(energy_wh: float | None, *, earned: int = 0) -> JobRecord:
    return JobRecord(
        request_hash="ab" * 32,
        proxy="proxy-a",
        model=MODEL,
        status="ok",
        http_status=200,
        error_code=0,
        error_message="",
        coefficient=1000,
        prompt_tokens=10,
        cached_tokens=0,
        completion_tokens=20,
        reasoning_tokens=0,
        tokens=TokensUsed(10, 0, 20, 0, 30),
        earned_nanotons=earned,
        answer_bytes=100,
        started_at=1_700_000_000.0,
        finished_at=1_700_000_002.0,
        energy_wh=energy_wh,
    )


async def test_energy_per_job_and_net_profit_today(qtbot: QtBot, tmp_path: Path) -> None:
    services = build_test_services(tmp_path, backend_url="http://127.0.0.1:9", model=MODEL)
    models = ViewModels.build(services)
    page = DashboardPage(models.status, models.telemetry, models.earning, models.payouts)
    qtbot.addWidget(page)
    await services.payments.start()  # the ledger alone: no engine, no chain
    try:
        earned = parse_ton("0.5")
        proxy = await open_proxy(services, TEST_OWNER, on_chain=False)
        proxy.bill(earned // FEE // 2, earned // FEE // 2)  # the proxy billed 0.5 TON today
        # The job store's own estimate is not what the card shows: the ledger is.
        day = DayTotals("2026-11-25", 2, 2, 0, 60, parse_ton("9"), energy_wh=12.5)
        models.earning.jobs_changed.emit([_job(12.345, earned=earned), _job(None)], day)
        await page.load_earned_today()
        cells = [page.jobs_table.item(row, ENERGY_COLUMN) for row in (0, 1)]
        assert [cell.text() if cell else None for cell in cells] == ["12.35", "—"]
        assert page.earnings_card.value.text() == "0.5 TON"
        detail = page.earnings_card.detail.text()
        assert detail == "UTC day, from the payments ledger · 12.50 Wh"  # no price: no profit

        services.energy.set_price(parse_ton("4"))  # 4 TON per kWh: 12.5 Wh cost 0.05 TON
        await _until(lambda: "net profit" in page.earnings_card.detail.text())
        assert page.earnings_card.detail.text() == (
            "UTC day, from the payments ledger · 12.50 Wh · net profit 0.45 TON after 0.05 TON "
            "of electricity"
        )

        services.energy.set_price(parse_ton("80"))  # electricity now costs more than it earned
        await _until(lambda: "-0.5 TON" in page.earnings_card.detail.text())
        assert "net profit -0.5 TON after 1 TON of electricity" in page.earnings_card.detail.text()

        unmeasured = dataclasses.replace(day, energy_wh=None)
        models.earning.jobs_changed.emit([_job(None)], unmeasured)
        assert page.earnings_card.detail.text() == (
            "UTC day, from the payments ledger · energy not measured"
        )
    finally:
        await models.aclose()
        await services.aclose()


@pytest.mark.allow_log_warnings
async def test_a_failed_start_is_shown(qtbot: QtBot, tmp_path: Path) -> None:
    services = build_test_services(
        tmp_path, backend_url="http://127.0.0.1:9", model=MODEL, owner_address=TEST_OWNER
    )
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
