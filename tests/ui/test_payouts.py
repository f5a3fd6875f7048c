"""The payments ledger in the window, over the real services on the local network's simulated
chain: the dashboard's Earned / Vouchered / Paid figures and Cash out now, "Why am I not
earning?", and the Wallet page's pending and paid line and its "Earnings payout" rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from app.core.money import Nanoton, format_ton
from app.network.earnings_ledger import read_ledger
from app.network.ledger_labels import EARNINGS_PAYOUT, is_earnings_payout, payout_sources
from app.network.pipeline import Pipeline, Stage, StageState
from app.ui.pages.dashboard import DashboardPage
from app.ui.pages.wallet import SUBTITLE, WalletPage
from app.ui.pages.wallet_history import COLUMNS
from app.ui.viewmodels.bundle import ViewModels
from app.ui.widgets.earnings_panel import EarningsPanel
from app.ui.widgets.pipeline_panel import PipelinePanel
from app.wallet.addresses import parse_address
from app.wallet.contracts import TonNetwork
from app.wallet.history import Direction, HistoryEntry
from tests.polling import eventually
from tests.service_builder import TEST_OWNER, build_test_services
from tests.ui.conftest import shot
from tests.ui.ledger_rig import FEE, TON, chain_of, fund_node_wallet, open_proxy, owner_wallet

VOUCHER = 10_000_000  # tokens: 0.8 TON at the local network's 80 nanotons per token


async def _until(check: Callable[[], bool]) -> None:
    await eventually(check, pump=QApplication.processEvents)


def _ton(nanoton: int) -> str:
    return format_ton(nanoton, trim=True, unit=True)


def _panel(page: DashboardPage) -> EarningsPanel:
    assert page.earnings_panel is not None
    return page.earnings_panel


async def test_the_dashboard_shows_the_ledger_and_cash_out_now_pays(
    qtbot: QtBot, tmp_path: Path
) -> None:
    services = build_test_services(tmp_path)
    models = ViewModels.build(services)
    page = DashboardPage(models.status, models.telemetry, models.earning, models.payouts)
    qtbot.addWidget(page)
    page.resize(1060, 1500)
    await services.start()
    try:
        owner = await owner_wallet(services)
        await fund_node_wallet(services)
        proxy = await open_proxy(services, owner)
        proxy.bill(6_000_000, 4_000_000, 2_000_000)
        proxy.hold(VOUCHER, 12_000_000)  # the voucher covers the first two jobs
        panel = _panel(page)
        await _until(lambda: panel.vouchered.value.text() == _ton(VOUCHER * FEE))
        assert panel.earned.value.text() == _ton(12_000_000 * FEE)
        assert panel.paid.value.text() == "0 TON"
        assert f"{_ton(VOUCHER * FEE)} not paid yet" in panel.vouchered.detail.text()
        assert panel.cash_out_button.isEnabled()

        panel.cash_out_button.click()
        await _until(lambda: panel.message.text().startswith("Paid "))
        assert panel.message.text().startswith(f"Paid {_ton(VOUCHER * FEE)} into your wallet")
        assert panel.message.objectName() == "Muted"
        await services.payments.flush()
        ledger = await read_ledger(services.payments.store)
        totals = ledger.totals
        assert totals.paid_nanoton == VOUCHER * FEE
        await _until(lambda: panel.paid.value.text() == _ton(totals.paid_nanoton))
        assert panel.earned.value.text() == _ton(totals.earned_nanoton)
        assert panel.vouchered.value.text() == _ton(totals.vouchered_nanoton)
        assert _ton(totals.fees_nanoton) in panel.paid.detail.text()
        assert panel.vouchered.detail.text() == "signed · all paid"
        assert not panel.cash_out_button.isEnabled()  # nothing cashable any more

        await page.load_earned_today()
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        assert page.earnings_card.value.text() == _ton(ledger.by_period("day")[today])
        assert page.pipeline_panel is not None
        cashout_row = page.pipeline_panel.rows["cashout"]
        assert cashout_row.mark.text() == "✓"
        assert cashout_row.reason.text().endswith(f"paid {_ton(VOUCHER * FEE)}.")
        shot(page, "dashboard-ledger")
    finally:
        await models.aclose()
        await services.aclose()


@pytest.mark.allow_log_warnings  # the cash-out service logs the refusal
async def test_cash_out_now_shows_why_it_cannot_and_the_pipeline_says_what_to_fix(
    qtbot: QtBot, tmp_path: Path
) -> None:
    services = build_test_services(tmp_path, owner_address=TEST_OWNER)
    models = ViewModels.build(services)
    page = DashboardPage(models.status, models.telemetry, models.earning, models.payouts)
    qtbot.addWidget(page)
    await services.start()
    try:
        proxy = await open_proxy(services, TEST_OWNER)
        proxy.hold(VOUCHER, VOUCHER)  # held, but there is no node wallet to send it with
        panel = _panel(page)
        await _until(panel.cash_out_button.isEnabled)
        assert "The node wallet must be unlocked" in panel.cash_out_button.toolTip()

        panel.cash_out_button.click()
        await _until(lambda: "node wallet" in panel.message.text())
        assert panel.message.text() == (
            "The node wallet is locked or missing, so nothing can be cashed out."
        )
        assert panel.message.objectName() == "Error"
        assert panel.cash_out_button.isEnabled()  # it can be tried again once fixed

        pipeline = page.pipeline_panel
        assert pipeline is not None
        gas = pipeline.rows["gas"]
        assert gas.mark.text() == "✗"
        assert gas.reason.text() == "There is no node wallet to pay cash-out fees from."
        assert gas.fix.text() == "→ Wallet → Create node wallet (the local network funds it)."
        assert not gas.fix.isHidden()
        assert pipeline.rows["owner"].fix.isHidden()  # an OK stage needs no fix
        assert pipeline.verdict.text() == "✗ Engine running: blocked. Press Start earning."
    finally:
        await models.aclose()
        await services.aclose()


def test_the_pipeline_panel_follows_each_stage(qtbot: QtBot) -> None:
    def pipeline(gas: StageState) -> Pipeline:
        return Pipeline(
            (
                Stage("engine", "Engine running", StageState.OK, "Qwen on GPU 0"),
                Stage("gas", "Node wallet has gas", gas, "0.1 TON: needs 2.1", "Top it up."),
                Stage("requests", "Requests arriving", StageState.WAITING, "None yet.", "Wait."),
            )
        )

    panel = PipelinePanel(pipeline(StageState.BLOCKED))
    qtbot.addWidget(panel)
    gas = panel.rows["gas"]
    assert (gas.mark.text(), gas.fix.text()) == ("✗", "→ Top it up.")
    assert panel.verdict.text() == "✗ Node wallet has gas: blocked. Top it up."
    assert panel.rows["requests"].fix.text() == "→ Wait."

    panel.show_pipeline(pipeline(StageState.OK))
    assert gas.mark.text() == "✓"
    assert gas.fix.isHidden()
    assert panel.verdict.text() == "… Requests arriving: waiting. Wait."
    assert len(panel.rows) == 3


def _row_of(page: WalletPage, direction: str) -> list[str]:
    for row in range(page.history.rowCount()):
        cells = [page.history.item(row, c) for c in range(len(COLUMNS))]
        texts = [cell.text() if cell is not None else "" for cell in cells]
        if texts[COLUMNS.index("Direction")] == direction:
            return texts
    raise AssertionError(f"no {direction!r} row in the history")


async def test_the_wallet_page_shows_pending_and_paid_and_marks_payouts(
    qtbot: QtBot, tmp_path: Path
) -> None:
    services = build_test_services(tmp_path)
    models = ViewModels.build(services)
    page = WalletPage(models.wallet, models.payouts)
    qtbot.addWidget(page)
    page.resize(980, 720)
    await services.start()
    try:
        owner = await owner_wallet(services)
        # An ordinary transfer stays "Received".
        await chain_of(services).mint(owner, 2 * TON, comment="devnet faucet")
        await fund_node_wallet(services)
        proxy = await open_proxy(services, owner)
        proxy.hold(VOUCHER, VOUCHER)
        await services.cashout.cash_out()
        proxy.hold(VOUCHER + 5_000_000, VOUCHER + 5_000_000)  # 0.4 TON more, not paid yet
        await page.refresh()
        await _until(lambda: page.history.rowCount() == 2)
        payout = _row_of(page, EARNINGS_PAYOUT)
        assert payout[COLUMNS.index("Amount (TON)")] == f"+{format_ton(VOUCHER * FEE, trim=True)}"
        assert _row_of(page, "Received")[COLUMNS.index("Amount (TON)")] == "+2"
        assert page.earnings_label.text() == (
            f"Pending: {_ton(5_000_000 * FEE)} (vouchered, not yet paid) · "
            f"Paid: {_ton(VOUCHER * FEE)}"
        )
        assert SUBTITLE in [label.text() for label in page.findChildren(QLabel)]
        shot(page, "page-6-earnings")
    finally:
        await models.aclose()
        await services.aclose()


def test_payouts_are_recognised_in_any_address_form() -> None:
    raw = "0:" + "ab" * 32
    friendly = parse_address(raw, TonNetwork.TESTNET).forms.display(TonNetwork.TESTNET)
    assert payout_sources([]) == frozenset()

    def entry(counterparty: str, direction: Direction = Direction.INCOMING) -> HistoryEntry:
        return HistoryEntry(1, b"", 0, direction, counterparty, Nanoton(1), Nanoton(0), None, True)

    known = frozenset({raw})
    assert is_earnings_payout(entry(friendly), known)
    assert is_earnings_payout(entry(raw), known)
    assert not is_earnings_payout(entry(friendly, Direction.OUTGOING), known)
    assert not is_earnings_payout(entry("not an address"), known)
    assert not is_earnings_payout(entry("0:" + "cd" * 32), known)
