"""The withdraw dialog's clipboard guard, with the real QClipboard (offscreen): an address swapped
in the clipboard, or a pasted address unlike the one seen before, shows an inline warning."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QLineEdit
from pytestqt.qtbot import QtBot

from app.ui.dialogs.clipboard_guard import (
    CHANGED_WARNING,
    ClipboardGuard,
    looks_like_address,
)
from app.ui.dialogs.withdraw import WithdrawDialog
from app.ui.viewmodels.wallet import WalletViewModel
from tests.ui.test_wallet_page import PEER_FRIENDLY

MINE = PEER_FRIENDLY
THEIRS = "0QCrq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urqzTr"  # what malware would put there
RAW = "0:" + "ab" * 32


@pytest.fixture
def clipboard() -> Iterator[None]:
    QGuiApplication.clipboard().setText("")
    yield
    QGuiApplication.clipboard().setText("")


def set_clipboard(text: str) -> None:
    QGuiApplication.clipboard().setText(text)


def paste(field: QLineEdit) -> None:
    """What Ctrl+V does: inserts the clipboard's text and emits ``textEdited``."""
    field.paste()


def guarded(qtbot: QtBot) -> tuple[QLineEdit, QLabel, ClipboardGuard]:
    field = QLineEdit()
    label = QLabel()
    qtbot.addWidget(field)
    qtbot.addWidget(label)
    return field, label, ClipboardGuard(field, label)


def test_address_shapes() -> None:
    assert looks_like_address(MINE)
    assert looks_like_address(f"  {RAW}\n")
    assert not looks_like_address("hello")
    assert not looks_like_address(MINE + "x")


@pytest.mark.usefixtures("clipboard")
def test_a_plain_copy_and_paste_is_quiet(qtbot: QtBot) -> None:
    set_clipboard("some text")
    field, label, guard = guarded(qtbot)
    set_clipboard(MINE)  # copied from the exchange after opening the dialog: normal
    paste(field)
    assert field.text() == MINE
    assert guard.warnings == []
    assert label.isHidden()


@pytest.mark.usefixtures("clipboard")
def test_an_address_swapped_for_another_warns(qtbot: QtBot) -> None:
    set_clipboard(MINE)
    field, label, guard = guarded(qtbot)
    set_clipboard(THEIRS)
    assert guard.warnings == [CHANGED_WARNING]
    assert not label.isHidden()
    paste(field)
    assert len(guard.warnings) == 2
    assert MINE[:6] in guard.warnings[1]  # names the address seen before
    assert "check the address carefully" in label.text()


@pytest.mark.usefixtures("clipboard")
def test_a_paste_unlike_the_last_seen_clipboard_warns(qtbot: QtBot) -> None:
    set_clipboard(MINE)
    field, _label, guard = guarded(qtbot)
    guard.stop()  # as if the change came without a dataChanged
    set_clipboard(THEIRS)
    assert guard.warnings == []
    paste(field)
    assert len(guard.warnings) == 1
    assert MINE[:6] in guard.warnings[0]


@pytest.mark.usefixtures("clipboard")
def test_typing_and_setting_text_never_warn(qtbot: QtBot) -> None:
    set_clipboard(MINE)
    field, _label, guard = guarded(qtbot)
    set_clipboard(THEIRS)
    guard.warnings.clear()
    field.setText(RAW)  # not an edit by the user (e.g. a pre-filled top-up)
    field.insert("x")  # a typed character
    field.textEdited.emit(field.text())
    assert guard.warnings == []


@pytest.mark.usefixtures("clipboard")
async def test_withdraw_dialog_shows_the_warning(qtbot: QtBot, wallet_vm: WalletViewModel) -> None:
    set_clipboard(MINE)
    dialog = WithdrawDialog(wallet_vm)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.clipboard_warning.isVisible()
    set_clipboard(THEIRS)
    dialog.destination.setFocus()
    paste(dialog.destination)
    assert dialog.destination.text() == THEIRS
    assert dialog.clipboard_warning.isVisible()
    assert CHANGED_WARNING in dialog.clipboard_warning.text()
    dialog.reject()
    set_clipboard(MINE)  # closed: no longer watching
    assert dialog.clipboard_guard.warnings.count(CHANGED_WARNING) == 1
