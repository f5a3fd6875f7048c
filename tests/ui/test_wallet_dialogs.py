"""The wallet dialogs on their own: every bad input gets a clear message and changes nothing;
secrets are wiped on close; a transfer whose broadcast was lost is followed until it settles."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialog
from pytestqt.qtbot import QtBot

from app.core.money import Nanoton
from app.ui.dialogs.create_wallet import CreateWalletDialog
from app.ui.dialogs.import_wallet import ImportWalletDialog
from app.ui.dialogs.withdraw import RESULT, REVIEW, WithdrawDialog
from app.ui.dialogs.withdraw_review import bounce_line, fee_share, receipt_text, review_lines
from app.ui.viewmodels.wallet import Failure, WalletViewModel
from app.wallet.chain import ChainOffline
from app.wallet.mnemonic import Mnemonic, parse_mnemonic
from app.wallet.pending import SendStatus
from app.wallet.service import WalletService
from app.wallet.simulated_chain import SimulatedChain
from app.wallet.wallet_state import WithdrawalReceipt
from app.wallet.withdrawals import WithdrawalRequest
from tests.ui.conftest import until, wallet_over
from tests.unit.wallet.conftest import TEST_VECTOR_PHRASE

PASSWORD = "correct horse battery"
PEER_FRIENDLY = "0QDNzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3NzdTJ"
SWAPPED = TEST_VECTOR_PHRASE.replace("decorate loyal", "loyal decorate")  # fails the seed check
BIP39_12 = "abandon " * 11 + "about"  # the BIP-39 test vector: a valid Bitcoin-style phrase


def fill_password(
    fields_owner: ImportWalletDialog | CreateWalletDialog, first: str, second: str
) -> None:
    fields_owner.password_fields.first.setText(first)
    fields_owner.password_fields.second.setText(second)


async def unlocked_and_funded(vm: WalletViewModel, service: WalletService) -> None:
    await service.import_(TEST_VECTOR_PHRASE, PASSWORD)
    assert await vm.unlock(PASSWORD) is None
    assert await vm.faucet() is None


# -- import --------------------------------------------------------------------------------


def test_import_names_a_misspelt_word_while_typing(
    qtbot: QtBot, wallet_vm: WalletViewModel
) -> None:
    dialog = ImportWalletDialog(wallet_vm)
    qtbot.addWidget(dialog)
    dialog.phrase.setPlainText("decorate loy")  # the last word is still being typed
    assert dialog.error.text() == ""
    assert dialog.word_count.text() == "2 of 24 words"
    dialog.phrase.setPlainText("decorate loyal trasnfer ")
    assert "Word 3 ('trasnfer') is not in the TON word list." in dialog.error.text()


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("", "Enter your 24-word recovery phrase."),
        (TEST_VECTOR_PHRASE.replace("transfer", "trasnfer"), "Word 3 ('trasnfer')"),
        (" ".join(TEST_VECTOR_PHRASE.split()[:23]), "this one has 23"),
        (BIP39_12, "BIP-39"),
        (SWAPPED, "not a valid TON recovery phrase"),
    ],
)
async def test_import_refuses_bad_phrases_and_stores_nothing(
    qtbot: QtBot,
    wallet_vm: WalletViewModel,
    wallet_service: WalletService,
    phrase: str,
    expected: str,
) -> None:
    dialog = ImportWalletDialog(wallet_vm)
    qtbot.addWidget(dialog)
    dialog.phrase.setPlainText(phrase)
    fill_password(dialog, PASSWORD, PASSWORD)
    assert not await dialog.submit()
    assert expected in dialog.error.text()
    assert wallet_service.wallets() == ()
    assert dialog.phrase.toPlainText() == phrase  # nothing the user typed is lost


async def test_import_checks_the_password_and_clears_on_close(
    qtbot: QtBot, wallet_vm: WalletViewModel, wallet_service: WalletService
) -> None:
    dialog = ImportWalletDialog(wallet_vm)
    qtbot.addWidget(dialog)
    dialog.phrase.setPlainText(f"1. {TEST_VECTOR_PHRASE.replace(' ', ', ', 1)}")  # pasted list
    fill_password(dialog, PASSWORD, "something else")
    assert not await dialog.submit()
    assert "differ" in dialog.error.text()
    fill_password(dialog, "short", "short")
    assert not await dialog.submit()
    assert "at least 8 characters" in dialog.error.text()
    dialog.reject()
    assert dialog.phrase.toPlainText() == ""
    assert dialog.password_fields.first.text() == ""
    assert wallet_service.wallets() == ()


# -- create --------------------------------------------------------------------------------


async def test_create_quiz_and_password_must_pass_before_anything_is_stored(
    qtbot: QtBot, wallet_vm: WalletViewModel, wallet_service: WalletService
) -> None:
    mnemonic = await wallet_vm.new_mnemonic()
    assert isinstance(mnemonic, Mnemonic)
    dialog = CreateWalletDialog(wallet_vm, mnemonic)
    qtbot.addWidget(dialog)
    assert len(set(dialog.quiz_positions)) == 3
    dialog.written_down.setChecked(True)
    dialog.to_quiz.click()
    first, *rest = dialog.quiz_positions
    dialog.quiz_edits[0].setText("wrong")
    for position, edit in zip(rest, dialog.quiz_edits[1:], strict=True):
        edit.setText(mnemonic.words[position])
    assert not dialog.check_quiz()
    assert f"Word #{first + 1} does not match" in dialog.quiz_error.text()
    assert not await dialog.create_wallet()  # still on the quiz: nothing to create yet
    dialog.quiz_edits[0].setText(f" {mnemonic.words[first]} ")
    assert dialog.check_quiz()
    fill_password(dialog, PASSWORD, PASSWORD + "!")
    assert not await dialog.create_wallet()
    assert "differ" in dialog.password_error.text()
    assert wallet_service.wallets() == ()
    dialog.reject()  # abandoned: nothing stored, every word wiped
    assert wallet_service.wallets() == ()
    assert all(label.text() == "" for label in dialog.word_labels)
    assert not await dialog.create_wallet()


async def test_created_wallet_restores_from_the_shown_words(
    qtbot: QtBot, wallet_vm: WalletViewModel, wallet_service: WalletService
) -> None:
    mnemonic = await wallet_vm.new_mnemonic()
    assert isinstance(mnemonic, Mnemonic)
    shown = [
        label.text().split(". ", 1)[1]
        for label in CreateWalletDialog(wallet_vm, mnemonic).word_labels
    ]
    assert await wallet_vm.save_new_wallet(mnemonic, PASSWORD) is None
    (summary,) = wallet_service.wallets()
    assert parse_mnemonic(" ".join(shown)) == mnemonic
    assert repr(mnemonic) not in summary.address


# -- withdraw ------------------------------------------------------------------------------


async def test_send_refused_when_the_wallet_locked_meanwhile(
    qtbot: QtBot,
    wallet_vm: WalletViewModel,
    wallet_service: WalletService,
    sim_chain: SimulatedChain,
) -> None:
    await unlocked_and_funded(wallet_vm, wallet_service)
    dialog = WithdrawDialog(wallet_vm, WithdrawalRequest(PEER_FRIENDLY, "1"))
    qtbot.addWidget(dialog)
    assert await dialog.review()
    wallet_vm.lock()  # e.g. auto-lock while the review was open
    assert not await dialog.send()
    assert dialog.steps.currentIndex() == REVIEW
    assert "locked" in dialog.send_error.text()
    assert "Nothing was sent." in dialog.send_error.text()
    assert wallet_service.state.value.balance == 10 * 10**9


class LossyChain(SimulatedChain):
    """Loses the first broadcast on the way (the app cannot know whether it arrived)."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 0

    async def send_boc(self, boc: bytes) -> None:
        if self.lost < 2:  # the send and the re-send right after it
            self.lost += 1
            raise ChainOffline()
        await super().send_boc(boc)


async def test_a_lost_broadcast_is_followed_until_it_settles(qtbot: QtBot, tmp_path: Path) -> None:
    chain = LossyChain()
    async with wallet_over(tmp_path, chain, PASSWORD, funds=5 * 10**9) as vm:
        assert await vm.unlock(PASSWORD) is None
        dialog = WithdrawDialog(vm, WithdrawalRequest(PEER_FRIENDLY, "2"), poll_s=0.01)
        qtbot.addWidget(dialog)
        assert await dialog.review()
        assert await dialog.send()
        assert dialog.status is SendStatus.UNKNOWN
        assert dialog.steps.currentIndex() == RESULT
        assert dialog.result_title.text() == "Not confirmed yet"
        assert "never be paid twice" in dialog.result_detail.text()
        await until(lambda: dialog.result_title.text() == "Settled")
        assert (await chain.get_account_state(PEER_FRIENDLY)).balance == 2 * 10**9
        dialog.accept()
        await dialog.wait_followed()


async def test_review_explains_bounce_and_fees(
    qtbot: QtBot, wallet_vm: WalletViewModel, wallet_service: WalletService
) -> None:
    await unlocked_and_funded(wallet_vm, wallet_service)
    plan = await wallet_vm.plan_withdrawal(WithdrawalRequest(PEER_FRIENDLY, "1", comment="memo"))
    assert not isinstance(plan, Failure)
    lines = "\n".join(review_lines(plan, wallet_vm.display_address))
    assert "You send <b>1 TON</b>" in lines
    assert "paid on top" in lines
    assert f"({fee_share(plan)} of the amount)" in lines
    assert (
        fee_share(dataclasses.replace(plan, amount=Nanoton(10**9), fee_estimate=Nanoton(5_355_000)))
        == "0.54 %"
    )
    assert "Comment: “memo”" in lines
    assert "deploys your wallet" in lines
    bouncing = dataclasses.replace(plan, bounce=True)
    assert bounce_line(bouncing).startswith("Bounce: yes")
    inactive = dataclasses.replace(
        plan, destination=dataclasses.replace(plan.destination, bounceable=True)
    )
    assert "not active yet" in bounce_line(inactive)


@pytest.mark.parametrize(
    ("status", "title"),
    [
        (SendStatus.SENT, "Sent"),
        (SendStatus.PENDING, "Waiting for confirmation…"),
        (SendStatus.UNKNOWN, "Not confirmed yet"),
        (SendStatus.FAILED, "Failed"),
        (SendStatus.NOT_SENT, "Not sent"),
    ],
)
def test_every_send_status_has_a_sentence(status: SendStatus, title: str) -> None:
    receipt = WithdrawalReceipt(
        status=status,
        destination=PEER_FRIENDLY,
        amount=Nanoton(1_500_000_000),
        send_all=False,
        fee_estimate=Nanoton(5_000_000),
        seqno=1,
        valid_until=2_000_000_000,
        message_hash=b"\x01" * 32,
        normalized_hash=b"\x02" * 32,
        message="The message expired." if status is SendStatus.NOT_SENT else "",
    )
    headline, detail = receipt_text(receipt)
    assert headline == title
    assert detail


async def test_import_cannot_be_closed_while_it_stores_the_wallet(
    qtbot: QtBot, wallet_vm: WalletViewModel, wallet_service: WalletService
) -> None:
    dialog = ImportWalletDialog(wallet_vm)
    qtbot.addWidget(dialog)
    codes: list[int] = []
    dialog.finished.connect(codes.append)
    dialog.phrase.setPlainText(TEST_VECTOR_PHRASE)
    fill_password(dialog, PASSWORD, PASSWORD)
    submitting = asyncio.create_task(dialog.submit())
    await until(lambda: not dialog.import_button.isEnabled())
    dialog.reject()  # Esc while the vault is being encrypted: ignored
    assert codes == []
    assert await submitting
    assert codes == [QDialog.DialogCode.Accepted]
    assert len(wallet_service.wallets()) == 1
