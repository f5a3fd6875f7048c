"""``ImportWalletDialog``: restore a wallet from its 24-word phrase under a new password.

Problems are named as the user types (a word that is not a TON word, by position); the whole
phrase is checked by the wallet on Import (count, checksum, "this is a BIP-39 phrase"). The
phrase field is cleared when the dialog closes.
"""

from __future__ import annotations

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from app.ui.dialogs.building_blocks import GuardedDialog, button_row, message_label
from app.ui.dialogs.password import NewPasswordFields
from app.ui.qt_async import async_slot
from app.ui.viewmodels.wallet import Failure, WalletViewModel
from app.wallet.mnemonic import MNEMONIC_WORDS


class ImportWalletDialog(GuardedDialog):
    """One text box for the words (pasting a numbered list works), then a password."""

    def __init__(self, view_model: WalletViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import a wallet")
        self.setMinimumWidth(520)
        self._vm = view_model
        layout = QVBoxLayout(self)
        intro = QLabel(
            f"Type or paste the {MNEMONIC_WORDS}-word recovery phrase of your TON wallet "
            "(Tonkeeper, MyTonWallet, TON Wallet…), separated by spaces."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.phrase = QPlainTextEdit()
        self.phrase.setPlaceholderText("word1 word2 word3 …")
        self.phrase.setTabChangesFocus(True)
        self.phrase.setUndoRedoEnabled(False)  # the undo stack would keep the words
        self.phrase.setFixedHeight(96)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.phrase.setFont(font)
        self.phrase.textChanged.connect(self._on_phrase_changed)
        layout.addWidget(self.phrase)
        self.word_count = message_label("Muted")
        layout.addWidget(self.word_count)
        self.password_fields = NewPasswordFields()
        layout.addWidget(self.password_fields)
        self.error = message_label()
        layout.addWidget(self.error)
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.reject)
        self.import_button = QPushButton("Import")
        self.import_button.setObjectName("Primary")
        self.import_button.clicked.connect(self._on_import)
        layout.addLayout(button_row(cancel, self.import_button))
        self._on_phrase_changed()

    def _on_phrase_changed(self) -> None:
        text = self.phrase.toPlainText()
        count = len([w for w in text.replace(",", " ").split() if not w.rstrip(".)").isdigit()])
        self.word_count.setText(f"{count} of {MNEMONIC_WORDS} words")
        self.error.setText(self._vm.phrase_problem(text))

    @async_slot()
    async def _on_import(self) -> None:
        await self.submit()

    async def submit(self) -> bool:
        """Check and store the wallet; True when imported (the dialog then closes)."""
        problem = self._vm.phrase_error(self.phrase.toPlainText())
        if problem:
            self.error.setText(problem)
            return False
        password = self.password_fields.password()
        if isinstance(password, Failure):
            self.error.setText(password.text)
            return False
        return await self.finish_with(
            self._vm.import_wallet(self.phrase.toPlainText(), password),
            self.error,
            "Checking the phrase and encrypting the wallet…",
            self.import_button,
        )

    def done(self, code: int) -> None:
        self.phrase.clear()
        self.password_fields.clear()
        super().done(code)
