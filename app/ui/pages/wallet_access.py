"""The Wallet page before the wallet is open: ``SetupView`` (create or import) and ``UnlockView``
(password, "unlock without password on this computer", the keyring's own message)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QWidget

from app.ui.dialogs.building_blocks import message_label, push_button, top_aligned, vbox_of
from app.ui.dialogs.password import password_edit
from app.ui.pages.page import Card


class SetupView(QWidget):
    """No wallet on this network yet: one card to create a wallet, one to import one."""

    def __init__(self) -> None:
        super().__init__()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        self.create_button = push_button("Create a wallet", primary=True)
        self.import_button = push_button("Import a wallet")
        for title, detail, button in (
            (
                "New wallet",
                "A new TON wallet on this computer, with a 24-word recovery phrase you write "
                "down on paper.",
                self.create_button,
            ),
            (
                "Existing wallet",
                "Use a wallet you already have (Tonkeeper, MyTonWallet…) by typing its 24 words.",
                self.import_button,
            ),
        ):
            card = Card(title, "", detail)
            card.value.hide()
            vbox_of(card).addStretch(1)  # buttons line up at the bottom of both cards
            vbox_of(card).addWidget(button)
            row.addWidget(card, 1)
        # Same height as the primary button once styled, so the two cards look alike.
        self.import_button.setObjectName("Large")
        holder = QWidget()
        holder.setLayout(row)
        top_aligned(self, holder)


class UnlockView(QWidget):
    """The locked wallet's address and the unlock form; ``keyring`` shows the no-password parts."""

    def __init__(self, *, keyring: bool) -> None:
        super().__init__()
        self.card = Card("Wallet locked", "", "")
        self.card.value.setObjectName("Mono")
        self.card.value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.password = password_edit("password")
        self.remember = QCheckBox("Unlock without password on this computer")
        self.remember.setToolTip("Keeps the wallet's key in the system keyring of this computer")
        self.keyring_note = message_label("Muted")
        self.unlock_button = push_button("Unlock", primary=True)
        self.unlock_saved_button = push_button("Unlock with saved key")
        self.unlock_saved_button.setVisible(keyring)
        self.remember.setVisible(keyring)
        self.error = message_label()
        row = QHBoxLayout()
        row.addWidget(self.password, 1)
        row.addWidget(self.unlock_button)
        row.addWidget(self.unlock_saved_button)
        layout = vbox_of(self.card)
        layout.addLayout(row)
        for widget in (self.remember, self.keyring_note, self.error):
            layout.addWidget(widget)
        top_aligned(self, self.card)
