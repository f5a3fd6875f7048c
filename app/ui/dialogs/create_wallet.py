"""``CreateWalletDialog``: show a new recovery phrase once, quiz a few words, set a password.

The wallet is stored only after the quiz passed and a password was chosen, so abandoning the
dialog leaves nothing behind. The words are never copied to the clipboard and are wiped from the
widgets (and the phrase dropped) when the dialog closes.
"""

from __future__ import annotations

import secrets
from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.ui.dialogs.building_blocks import GuardedDialog, button_row, message_label
from app.ui.dialogs.password import NewPasswordFields
from app.ui.qt_async import async_slot
from app.ui.viewmodels.wallet import Failure, WalletViewModel
from app.wallet.mnemonic import Mnemonic

QUIZ_WORDS: Final = 3
_WORD_COLUMNS: Final = 4
_WARNING = (
    "Write these 24 words down on paper, in this order, and keep them somewhere safe. "
    "They are the only way to recover this wallet if this computer is lost. Anyone who sees "
    "them can take its money. They will not be shown again, and no one from this app will "
    "ever ask for them."
)


class CreateWalletDialog(GuardedDialog):
    """Three steps: the words (shown once), a check of some of them, the password."""

    def __init__(
        self, view_model: WalletViewModel, mnemonic: Mnemonic, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Create a wallet")
        self.setMinimumWidth(560)
        self._vm = view_model
        self._mnemonic: Mnemonic | None = mnemonic
        count = len(mnemonic.words)
        self.quiz_positions = sorted(secrets.SystemRandom().sample(range(count), QUIZ_WORDS))
        self.steps = QStackedWidget()
        self.steps.addWidget(self._words_step(mnemonic))
        self.steps.addWidget(self._quiz_step())
        self.steps.addWidget(self._password_step())
        layout = QVBoxLayout(self)
        layout.addWidget(self.steps)

    # -- steps ------------------------------------------------------------------------------

    def _words_step(self, mnemonic: Mnemonic) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        warning = QLabel(_WARNING)
        warning.setObjectName("Warning")
        warning.setWordWrap(True)
        layout.addWidget(warning)
        grid = QGridLayout()
        grid.setHorizontalSpacing(18)
        rows = (len(mnemonic.words) + _WORD_COLUMNS - 1) // _WORD_COLUMNS
        self.word_labels: list[QLabel] = []
        for index, word in enumerate(mnemonic.words):
            label = QLabel(f"{index + 1:>2}. {word}")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
            label.setObjectName("MnemonicWord")
            grid.addWidget(label, index % rows, index // rows)
            self.word_labels.append(label)
        layout.addLayout(grid)
        self.written_down = QCheckBox("I have written down all 24 words, in order")
        self.to_quiz = QPushButton("Next")
        self.to_quiz.setObjectName("Primary")
        self.to_quiz.setEnabled(False)
        self.written_down.toggled.connect(self.to_quiz.setEnabled)
        self.to_quiz.clicked.connect(lambda: self.steps.setCurrentIndex(1))
        layout.addWidget(self.written_down)
        layout.addLayout(button_row(self._cancel_button(), self.to_quiz))
        return page

    def _quiz_step(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        intro = QLabel("Check your copy: type these words from your paper.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.quiz_edits: list[QLineEdit] = []
        for position in self.quiz_positions:
            edit = QLineEdit()
            edit.setPlaceholderText(f"word #{position + 1}")
            form.addRow(f"Word #{position + 1}", edit)
            self.quiz_edits.append(edit)
        layout.addLayout(form)
        self.quiz_error = message_label()
        layout.addWidget(self.quiz_error)
        back = QPushButton("Show the words again")
        back.clicked.connect(lambda: self.steps.setCurrentIndex(0))
        check = QPushButton("Next")
        check.setObjectName("Primary")
        check.clicked.connect(self.check_quiz)
        layout.addStretch(1)
        layout.addLayout(button_row(back, check))
        return page

    def _password_step(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        intro = QLabel(
            "Choose a password for this computer. It encrypts the wallet here and is asked "
            "for when you unlock it. Your 24 words restore the wallet without it."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.password_fields = NewPasswordFields()
        layout.addWidget(self.password_fields)
        self.password_error = message_label()
        layout.addWidget(self.password_error)
        self.create_button = QPushButton("Create wallet")
        self.create_button.setObjectName("Primary")
        self.create_button.clicked.connect(self._on_create)
        layout.addStretch(1)
        layout.addLayout(button_row(self._cancel_button(), self.create_button))
        return page

    def _cancel_button(self) -> QPushButton:
        button = QPushButton("Cancel")
        button.clicked.connect(self.reject)
        return button

    # -- actions ----------------------------------------------------------------------------

    def check_quiz(self) -> bool:
        """Compare the typed words with the phrase; go on to the password when all match."""
        if self._mnemonic is None:
            return False
        words = self._mnemonic.words
        for position, edit in zip(self.quiz_positions, self.quiz_edits, strict=True):
            typed = edit.text().strip().lower()
            if not secrets.compare_digest(typed.encode(), words[position].encode()):
                self.quiz_error.setText(
                    f"Word #{position + 1} does not match. Check your written copy, or show "
                    "the words again."
                )
                return False
        self.quiz_error.setText("")
        self.steps.setCurrentIndex(2)
        return True

    @async_slot()
    async def _on_create(self) -> None:
        await self.create_wallet()

    async def create_wallet(self) -> bool:
        """Store the wallet under the chosen password; True when it was created."""
        if self._mnemonic is None or self.steps.currentIndex() != 2:
            return False
        password = self.password_fields.password()
        if isinstance(password, Failure):
            self.password_error.setText(password.text)
            return False
        return await self.finish_with(
            self._vm.save_new_wallet(self._mnemonic, password),
            self.password_error,
            "Encrypting the wallet…",
            self.create_button,
        )

    def done(self, code: int) -> None:
        self._wipe()
        super().done(code)

    def _wipe(self) -> None:
        self._mnemonic = None
        for label in self.word_labels:
            label.clear()
        for edit in self.quiz_edits:
            edit.clear()
        self.password_fields.clear()
