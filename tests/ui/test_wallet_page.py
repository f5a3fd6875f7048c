"""The Wallet page with real widgets over a real WalletService on the simulated chain:
create → unlock → faucet → refresh → refused withdrawals → a withdrawal in the history."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from app.core.observable import Observable
from app.core.settings import Settings, WorkerSettings
from app.ui.dialogs.create_wallet import CreateWalletDialog
from app.ui.dialogs.import_wallet import ImportWalletDialog
from app.ui.dialogs.password import NewPasswordDialog
from app.ui.dialogs.withdraw import WithdrawDialog
from app.ui.pages.wallet import LOCKED, SETUP, UNLOCKED, WalletPage
from app.ui.viewmodels.wallet import HISTORY_PAGE_SIZE, WalletViewModel
from app.wallet.chain import ChainOffline
from app.wallet.keyring_cache import KeyringCache
from app.wallet.pending import SendStatus
from app.wallet.service import WalletService
from app.wallet.simulated_chain import SimulatedChain
from tests.conftest import MemoryKeyring
from tests.ui.conftest import shot, until, wallet_over
from tests.unit.wallet.conftest import TEST_VECTOR_PHRASE

PASSWORD = "correct horse battery"
TON = 10**9
PEER = "0:" + "cd" * 32
PEER_FRIENDLY = "0QDNzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3NzdTJ"  # testnet, non-bounceable


def cell(page: WalletPage, row: int, column: int) -> str:
    item = page.history.item(row, column)
    assert item is not None
    return item.text()


def tooltip(page: WalletPage, row: int, column: int) -> str:
    item = page.history.item(row, column)
    assert item is not None
    return item.toolTip()


def make_page(qtbot: QtBot, vm: WalletViewModel) -> WalletPage:
    page = WalletPage(vm)
    qtbot.addWidget(page)
    page.resize(980, 720)
    return page


async def unlocked_page(qtbot: QtBot, vm: WalletViewModel) -> WalletPage:
    page = make_page(qtbot, vm)
    page.password.setText(PASSWORD)
    assert await page.unlock()
    return page


async def create_through_the_dialog(page: WalletPage) -> str:
    """Drive the create dialog like a user; returns the phrase read from the screen."""
    task = asyncio.create_task(page.create_wallet())
    dialog = await until(lambda: page.dialog)
    assert isinstance(dialog, CreateWalletDialog)
    words = [label.text().split(". ", 1)[1] for label in dialog.word_labels]
    assert len(words) == 24
    shot(dialog, "create-1-words")
    assert not dialog.to_quiz.isEnabled()
    dialog.written_down.setChecked(True)
    dialog.to_quiz.click()
    for position, edit in zip(dialog.quiz_positions, dialog.quiz_edits, strict=True):
        edit.setText(words[position].upper())  # case does not matter
    shot(dialog, "create-2-quiz")
    assert dialog.check_quiz()
    dialog.password_fields.first.setText(PASSWORD)
    dialog.password_fields.second.setText(PASSWORD)
    shot(dialog, "create-3-password")
    assert await dialog.create_wallet()
    await task
    assert all(label.text() == "" for label in dialog.word_labels)  # wiped on close
    return " ".join(words)


async def open_withdraw(
    page: WalletPage, amount: str | None = None
) -> tuple[asyncio.Task[None], WithdrawDialog]:
    """Open the withdraw dialog; with ``amount``, already filled in to PEER_FRIENDLY."""
    task = asyncio.create_task(page.withdraw())
    dialog = await until(lambda: page.dialog)
    assert isinstance(dialog, WithdrawDialog)
    if amount is not None:
        dialog.destination.setText(PEER_FRIENDLY)
        dialog.amount.setText(amount)
    return task, dialog


def test_placeholder_without_a_view_model(qtbot: QtBot) -> None:
    page = WalletPage()
    qtbot.addWidget(page)
    assert page.balance_card.value.text() == "—"


async def test_create_unlock_fund_and_withdraw(
    qtbot: QtBot,
    wallet_vm: WalletViewModel,
    sim_chain: SimulatedChain,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    page = make_page(qtbot, wallet_vm)
    assert page.views.currentIndex() == SETUP
    shot(page, "page-1-setup")
    phrase = await create_through_the_dialog(page)
    assert page.views.currentIndex() == LOCKED
    assert page.unlock_card.value.text().startswith("0Q")
    shot(page, "page-2-locked")

    page.password.setText("not the password")
    assert not await page.unlock()
    assert "password" in page.unlock_error.text().lower()
    assert page.views.currentIndex() == LOCKED
    page.password.setText(PASSWORD)
    assert await page.unlock()
    assert page.password.text() == ""
    assert page.views.currentIndex() == UNLOCKED

    await page.faucet()
    assert page.balance_card.value.text() == "10 TON"
    assert not page.offline_badge.isVisible()
    assert page.history.rowCount() == 1
    assert cell(page, 0, 1) == "Received"
    assert cell(page, 0, 5) == "devnet faucet"

    task, dialog = await open_withdraw(page)
    dialog.destination.setText("EQ-not-an-address")
    assert "48 characters" in dialog.destination_note.text()
    dialog.amount.setText("1")
    assert not await dialog.review()
    assert "48 characters" in dialog.details_error.text()

    dialog.destination.setText(PEER_FRIENDLY)
    assert "Valid address" in dialog.destination_note.text()
    dialog.amount.setText("20")
    assert not await dialog.review()
    assert "balance is too low" in dialog.details_error.text()
    shot(dialog, "withdraw-1-error")

    dialog.amount.setText("1.5")
    dialog.comment.setText("thanks")
    assert await dialog.review()
    summary = "\n".join(dialog.summary_lines)
    assert "You send <b>1.5 TON</b>" in summary
    assert "Bounce: no, because this is a non-bounceable address" in summary
    assert "thanks" in summary
    assert dialog.send_button.isEnabled()  # no warnings to confirm
    shot(dialog, "withdraw-2-review")
    assert await dialog.send()
    assert dialog.status is SendStatus.SENT
    assert dialog.result_title.text() == "Sent"
    shot(dialog, "withdraw-3-result")
    dialog.accept()
    await task
    assert dialog.destination.text() == ""  # cleared on close

    assert (await sim_chain.get_account_state(PEER)).balance == 1_500_000_000
    assert cell(page, 0, 1) == "Sent"
    assert cell(page, 0, 3) == "\u22121.5"
    assert cell(page, 0, 5) == "thanks"
    assert cell(page, 0, 6) == "Confirmed"
    assert tooltip(page, 0, 2) == PEER_FRIENDLY
    shot(page, "page-3-unlocked")

    assert phrase not in caplog.text
    assert phrase not in QGuiApplication.clipboard().text()
    page.lock_button.click()
    assert page.views.currentIndex() == LOCKED


async def test_withdrawal_warnings_need_explicit_confirmation(
    qtbot: QtBot, wallet_vm: WalletViewModel, wallet_service: WalletService
) -> None:
    await wallet_service.import_(TEST_VECTOR_PHRASE, PASSWORD)
    page = await unlocked_page(qtbot, wallet_vm)
    await page.faucet()
    task, dialog = await open_withdraw(page)
    dialog.destination.setText(PEER)  # raw: no checksum
    assert "raw address" in dialog.destination_note.text()
    dialog.max_button.setChecked(True)
    assert not dialog.amount.isEnabled()
    assert await dialog.review()
    assert "whole balance" in "\n".join(dialog.summary_lines)
    assert set(dialog.confirmations) >= {"raw_address", "large_first_send"}
    assert not dialog.send_button.isEnabled()
    shot(dialog, "withdraw-2-warnings")
    for check in dialog.confirmations.values():
        check.setChecked(True)
    assert dialog.send_button.isEnabled()
    assert await dialog.send()
    assert dialog.status is SendStatus.SENT
    dialog.accept()
    await task
    assert page.balance_card.value.text() == "0 TON"


async def test_own_address_is_noted_live(
    qtbot: QtBot, wallet_vm: WalletViewModel, wallet_service: WalletService
) -> None:
    summary = await wallet_service.import_(TEST_VECTOR_PHRASE, PASSWORD)
    page = await unlocked_page(qtbot, wallet_vm)
    task, dialog = await open_withdraw(page)
    dialog.destination.setText(summary.address)
    assert "own address" in dialog.destination_note.text()
    dialog.amount.setText("1.0000000001")
    assert "9 decimal places" in dialog.amount_note.text()
    dialog.reject()
    await task


async def test_import_then_unlock_without_password_next_time(
    qtbot: QtBot, wallet_vm: WalletViewModel, wallet_service: WalletService
) -> None:
    page = make_page(qtbot, wallet_vm)
    task = asyncio.create_task(page.import_wallet())
    dialog = await until(lambda: page.dialog)
    assert isinstance(dialog, ImportWalletDialog)
    dialog.phrase.setPlainText(TEST_VECTOR_PHRASE)
    dialog.password_fields.first.setText(PASSWORD)
    dialog.password_fields.second.setText(PASSWORD)
    assert await dialog.submit()
    await task
    assert dialog.phrase.toPlainText() == ""
    assert "imported" in page.message.text()
    assert page.remember.isVisibleTo(page)  # the page itself is never shown here
    assert not await page.unlock_saved()
    assert "No saved key" in page.unlock_error.text()
    page.password.setText(PASSWORD)
    page.remember.setChecked(True)
    assert await page.unlock()
    page.lock_button.click()
    assert await page.unlock_saved()
    assert page.views.currentIndex() == UNLOCKED


async def test_export_csv_through_the_file_dialog(
    qtbot: QtBot, wallet_vm: WalletViewModel, wallet_service: WalletService, tmp_path: Path
) -> None:
    await wallet_service.import_(TEST_VECTOR_PHRASE, PASSWORD)
    page = make_page(qtbot, wallet_vm)
    await page.faucet()
    task = asyncio.create_task(page.export_csv())
    dialog = await until(lambda: page.dialog)
    assert isinstance(dialog, QFileDialog)
    target = tmp_path / "history.csv"
    dialog.selectFile(str(target))
    dialog.accept()
    await task
    assert "Exported 1 rows" in page.message.text()
    assert "devnet faucet" in target.read_text()


async def test_node_wallet_create_and_top_up(
    qtbot: QtBot, wallet_vm: WalletViewModel, wallet_service: WalletService
) -> None:
    await wallet_service.import_(TEST_VECTOR_PHRASE, PASSWORD)
    page = await unlocked_page(qtbot, wallet_vm)
    await page.faucet()
    assert page.create_node_button.isVisibleTo(page)
    task = asyncio.create_task(page.create_node_wallet())
    dialog = await until(lambda: page.dialog)
    assert isinstance(dialog, NewPasswordDialog)
    dialog.fields.first.setText("short")
    assert not await dialog.submit()
    assert "at least 8" in dialog.error.text()
    dialog.fields.first.setText(PASSWORD)
    dialog.fields.second.setText(PASSWORD + "x")
    assert not await dialog.submit()
    assert "differ" in dialog.error.text()
    dialog.fields.second.setText(PASSWORD)
    assert await dialog.submit()
    await task
    assert "needs 2.1 TON more" in page.node_card.detail.text()
    assert page.top_up_button.isVisibleTo(page)

    task = asyncio.create_task(page.top_up())
    withdraw = await until(lambda: page.dialog)
    assert isinstance(withdraw, WithdrawDialog)
    assert withdraw.amount.text() == "2.100000000"
    assert await withdraw.review()
    assert await withdraw.send()
    withdraw.accept()
    await task
    assert "ready" in page.node_card.detail.text()
    assert not page.top_up_button.isEnabled()


async def test_owner_address_follows_the_settings(
    qtbot: QtBot,
    wallet_vm: WalletViewModel,
    wallet_service: WalletService,
    wallet_settings: Observable[Settings],
) -> None:
    page = make_page(qtbot, wallet_vm)
    summary = await wallet_service.import_(TEST_VECTOR_PHRASE, PASSWORD)
    assert page.owner_label.text() == f"Earnings go to: {summary.address} (this wallet)"
    wallet_settings.set(Settings(worker=WorkerSettings(owner_address=PEER)))
    assert "not usable" in page.owner_label.text()
    wallet_settings.set(Settings(worker=WorkerSettings(owner_address=PEER_FRIENDLY)))
    assert page.owner_label.text() == f"Earnings go to: {PEER_FRIENDLY}"


async def test_buttons_reach_their_commands(
    qtbot: QtBot, wallet_vm: WalletViewModel, wallet_service: WalletService
) -> None:
    await wallet_service.import_(TEST_VECTOR_PHRASE, PASSWORD)
    page = make_page(qtbot, wallet_vm)
    page.password.setText("wrong password")
    page.unlock_button.click()
    await until(lambda: page.unlock_error.text())
    page.password.setText(PASSWORD)
    page.unlock_button.click()
    await until(lambda: page.views.currentIndex() == UNLOCKED)
    page.faucet_button.click()
    await until(lambda: page.balance_card.value.text() == "10 TON")
    page.withdraw_button.click()
    dialog = await until(lambda: page.dialog)
    dialog.reject()
    await until(lambda: page.dialog is None)


async def test_history_follows_the_services_own_refreshes(
    qtbot: QtBot,
    wallet_vm: WalletViewModel,
    wallet_service: WalletService,
    sim_chain: SimulatedChain,
) -> None:
    summary = await wallet_service.import_(TEST_VECTOR_PHRASE, PASSWORD)
    page = await unlocked_page(qtbot, wallet_vm)
    assert page.history.rowCount() == 0
    await sim_chain.mint(summary.raw_address, 3 * TON, comment="earnings")
    await wallet_service.refresh()  # the service's timer, not the page, saw the money
    assert page.balance_card.value.text() == "3 TON"
    await until(lambda: page.history.rowCount() == 1)
    assert cell(page, 0, 5) == "earnings"


async def test_offline_keeps_the_last_balance_with_a_badge(
    qtbot: QtBot,
    wallet_vm: WalletViewModel,
    wallet_service: WalletService,
    sim_chain: SimulatedChain,
) -> None:
    await wallet_service.import_(TEST_VECTOR_PHRASE, PASSWORD)
    page = await unlocked_page(qtbot, wallet_vm)
    await page.faucet()
    assert page.offline_badge.isHidden()
    sim_chain.online.set(False)
    assert not page.offline_badge.isHidden()
    assert page.balance_card.value.text() == "10 TON"
    assert "offline" in page.balance_card.detail.text()
    shot(page, "page-4-offline")
    sim_chain.online.set(True)
    assert page.offline_badge.isHidden()


class BrokenKeyring(MemoryKeyring):
    """A system keyring that fails every call (no D-Bus session, locked collection…)."""

    def get_password(self, service: str, username: str) -> str | None:
        raise RuntimeError("no secret service")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError("no secret service")


async def test_remember_degrades_with_the_keyrings_message(
    qtbot: QtBot, tmp_path: Path, sim_chain: SimulatedChain
) -> None:
    async with wallet_over(
        tmp_path, sim_chain, PASSWORD, keyring=KeyringCache(backend=BrokenKeyring())
    ) as vm:
        page = make_page(qtbot, vm)
        assert page.remember.isEnabled()
        page.password.setText(PASSWORD)
        page.remember.setChecked(True)
        assert await page.unlock()  # the password worked; only remembering it failed
        assert not page.remember.isEnabled()
        assert not page.remember.isChecked()
        assert "keyring is not available (RuntimeError)" in page.keyring_note.text()
        page.lock_button.click()
        assert not page.unlock_saved_button.isEnabled()
        assert not await page.unlock_saved()
        assert "keyring is not available" in page.unlock_error.text()
        assert not page.unlock_saved_button.isEnabled()
        page.unlock_error.clear()
        shot(page, "page-2-keyring-degraded")


class GatedChain(SimulatedChain):
    """Holds every broadcast until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def send_boc(self, boc: bytes) -> None:
        await self.gate.wait()
        await super().send_boc(boc)


async def test_the_dialog_stays_open_while_sending_and_the_page_shows_progress(
    qtbot: QtBot, tmp_path: Path
) -> None:
    chain = GatedChain()
    async with wallet_over(tmp_path, chain, PASSWORD, funds=5 * TON) as vm:
        page = await unlocked_page(qtbot, vm)
        task, dialog = await open_withdraw(page, "1")
        assert await dialog.review()
        sending = asyncio.create_task(dialog.send())
        await until(lambda: dialog.result_title.text() == "Sending…")
        assert not dialog.close_button.isEnabled()
        dialog.reject()  # Esc / the window's close button while signing and broadcasting
        assert page.dialog is dialog
        assert not task.done()
        chain.gate.set()
        assert await sending
        assert dialog.result_title.text() == "Sent"
        dialog.accept()
        await task
        assert cell(page, 0, 1) == "Sent"


async def test_older_transfers_load_on_request(
    qtbot: QtBot,
    wallet_vm: WalletViewModel,
    wallet_service: WalletService,
    sim_chain: SimulatedChain,
) -> None:
    summary = await wallet_service.import_(TEST_VECTOR_PHRASE, PASSWORD)
    for n in range(HISTORY_PAGE_SIZE + 1):
        await sim_chain.mint(summary.raw_address, TON, comment=f"payout {n}")
    page = await unlocked_page(qtbot, wallet_vm)
    assert page.history.rowCount() == HISTORY_PAGE_SIZE
    assert cell(page, 0, 5) == f"payout {HISTORY_PAGE_SIZE}"
    assert page.more_button.isVisibleTo(page)
    await page.load_more()
    assert page.history.rowCount() == HISTORY_PAGE_SIZE + 1
    assert cell(page, HISTORY_PAGE_SIZE, 5) == "payout 0"
    assert not page.more_button.isVisibleTo(page)


class SilentChain(SimulatedChain):
    """Every broadcast is lost on the way: the send stays pending (its fate unknown)."""

    async def send_boc(self, boc: bytes) -> None:
        raise ChainOffline()


async def test_an_unconfirmed_send_shows_as_pending(qtbot: QtBot, tmp_path: Path) -> None:
    chain = SilentChain()
    async with wallet_over(tmp_path, chain, PASSWORD, funds=5 * TON) as vm:
        page = await unlocked_page(qtbot, vm)
        task, dialog = await open_withdraw(page, "2")
        assert await dialog.review()
        assert await dialog.send()
        assert dialog.status is SendStatus.UNKNOWN
        dialog.accept()  # closing only stops following; the wallet keeps the send pending
        await task
        assert "Sending 2 TON to" in page.pending_label.text()
        assert (cell(page, 0, 1), cell(page, 0, 3), cell(page, 0, 6)) == (
            "Sending",
            "\u22122",
            "Pending",
        )
        shot(page, "page-5-pending")
        task, dialog = await open_withdraw(page, "1")
        assert not await dialog.review()  # one unconfirmed send at a time
        assert "not confirmed yet" in dialog.details_error.text()
        dialog.reject()
        await task
