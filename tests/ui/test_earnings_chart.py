"""The dashboard's earnings chart: hourly and daily buckets from the real payments ledger, the
24 h / 30 days choice, the honest rate ("—" before an hour of billed jobs) and the totals."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.bootstrap import Services
from app.core.money import format_ton, parse_ton
from app.network.payment_store import BilledJob
from app.ui.pages.dashboard import DashboardPage
from app.ui.viewmodels.bundle import ViewModels
from app.ui.viewmodels.earnings_history import DAY, HOUR, NO_RATE, read_history
from app.ui.widgets.earnings_chart import RANGE_MONTH, EarningsChart
from tests.service_builder import TEST_OWNER, build_test_services
from tests.ui.conftest import shot
from tests.ui.ledger_rig import FEE, open_proxy

MODEL = "Qwen/Qwen3-8B"
# Wednesday 2026-11-25 14:30 UTC: the week began on Monday the 23rd.
NOW = datetime(2026, 11, 25, 14, 30, tzinfo=UTC).timestamp()


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    built = build_test_services(tmp_path, backend_url="http://127.0.0.1:9", model=MODEL)
    await built.payments.start()  # the ledger alone: no engine, no chain
    yield built
    await built.aclose()


def _job(index: int, at: float, nanoton: int) -> BilledJob:
    tokens = nanoton // FEE
    return BilledJob(f"{index:064x}", "0:" + "33" * 32, tokens, 1000 * index, FEE, at)


async def test_buckets_rate_and_totals_from_billed_jobs(services: Services) -> None:
    store = services.payments.store
    await store.save_billed(
        [
            _job(1, NOW - 40 * DAY, parse_ton("5")),  # outside the 30 days read
            _job(2, NOW - 3 * DAY, parse_ton("1")),  # Sunday: before this week
            _job(3, NOW - DAY, parse_ton("0.5")),  # Tuesday
            _job(4, NOW - 2 * HOUR, parse_ton("0.25")),  # 12:30 today
            _job(5, NOW - 20 * 60, parse_ton("0.1")),  # 14:10: inside the last hour
            _job(6, NOW - 10 * 60, parse_ton("0.02")),
        ]
    )
    history = await read_history(services.payments, now=NOW)
    assert history is not None
    assert len(history.hourly) == 24
    assert len(history.daily) == 30
    assert history.hourly[-1] == (NOW - 30 * 60, parse_ton("0.12"))
    assert history.hourly[-3] == (NOW - 2 * HOUR - 30 * 60, parse_ton("0.25"))
    assert sum(v for _, v in history.hourly) == parse_ton("0.37")  # from Tuesday 15:00 UTC on
    assert history.daily[-1] == (NOW - 14.5 * HOUR, parse_ton("0.37"))
    assert [v for _, v in history.daily[-4:]] == [parse_ton("1"), 0, parse_ton("0.5"), 370_000_000]
    assert history.today_nanoton == parse_ton("0.37")
    assert history.week_nanoton == parse_ton("0.87")
    assert history.all_time_nanoton == parse_ton("1.87")  # the 30 days read; no account tally
    assert history.rate_nanoton_per_hour == parse_ton("0.12")
    assert history.rate_text == "0.12 TON/h"


async def test_no_rate_before_an_hour_of_data(services: Services) -> None:
    await services.payments.store.save_billed([_job(1, NOW - 50 * 60, parse_ton("0.3"))])
    history = await read_history(services.payments, now=NOW)
    assert history is not None
    assert history.rate_nanoton_per_hour is None  # not 0.3 × 60/50 TON/h
    assert history.rate_text == NO_RATE
    assert history.today_nanoton == parse_ton("0.3")


async def test_toggle_switches_the_series(qtbot: QtBot, services: Services) -> None:
    await services.payments.store.save_billed(
        [_job(1, NOW - 5 * DAY, parse_ton("2")), _job(2, NOW - 90 * 60, parse_ton("0.4"))]
    )
    history = await read_history(services.payments, now=NOW)
    assert history is not None
    card = EarningsChart()
    qtbot.addWidget(card)
    card.show_history(history)
    assert card.buckets() == history.hourly
    assert card.chart.window_s == 24 * HOUR
    left = card.chart.left
    assert left is not None
    assert max(v or 0 for _, v in left.points) == pytest.approx(0.4)
    card.range_choice.setCurrentText(RANGE_MONTH)
    assert card.buckets() == history.daily
    assert card.chart.window_s == 30 * DAY
    left = card.chart.left
    assert left is not None
    assert len(left.points) == 30
    assert max(v or 0 for _, v in left.points) == pytest.approx(2.0)
    assert card.title.text() == "Earned per day (UTC)"
    assert card.rate.value.text() == "0 TON/h"  # data for over an hour, none in the last one
    assert card.all_time.value.text() == format_ton(parse_ton("2.4"), trim=True, unit=True)


async def test_dashboard_shows_the_ledger_through_the_rig(qtbot: QtBot, services: Services) -> None:
    models = ViewModels.build(services)
    page = DashboardPage(models.status, models.telemetry, models.earning, models.payouts)
    qtbot.addWidget(page)
    try:
        earned = parse_ton("0.5")
        proxy = await open_proxy(services, TEST_OWNER, on_chain=False)
        proxy.bill(earned // FEE // 2, earned // FEE // 2)  # billed just now
        await page.load_earned_today()
        card = page.earnings_chart
        assert card is not None
        assert card.rate.value.text() == NO_RATE  # a minute of data is not a rate
        assert card.today.value.text() == "0.5 TON"
        assert card.all_time.value.text() == "0.5 TON"
        assert card.history is not None
        assert card.history.hourly[-1][1] == earned

        now = time.time()
        await services.payments.store.save_billed(
            [_job(7, now - 70 * 60, parse_ton("0.2")), _job(8, now - 30 * 60, parse_ton("0.3"))]
        )
        await page.load_earned_today()
        assert card.rate.value.text() == "0.8 TON/h"  # the rig's 0.5 and 0.3 in the last hour
        page.resize(1000, 1400)
        shot(card, "earnings-chart")
    finally:
        await models.aclose()
