"""``WalletPage``: balance, address, history and withdrawals of the user's TON wallet."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from app.ui.pages.page import Card, Page


class WalletPage(Page):
    """The wallet overview; the wallet service fills the cards once a wallet is unlocked."""

    def __init__(self) -> None:
        super().__init__(
            "Wallet", "Your earnings arrive here. Withdraw TON to any wallet at any time."
        )
        self.balance_card = Card("Balance", "—", "No wallet yet")
        self.body.addWidget(self.balance_card)
        hint = QLabel("Create or import a wallet to receive your earnings.")
        hint.setObjectName("Muted")
        self.body.addWidget(hint)
