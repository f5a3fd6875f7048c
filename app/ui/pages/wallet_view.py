"""``WalletView``: the open wallet's widgets (balance and node cards, address and its QR code,
actions, the pending send, history); the Wallet page connects and fills them."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from app.ui.dialogs.building_blocks import message_label, push_button, vbox_of
from app.ui.pages.page import Card
from app.ui.pages.wallet_history import HistoryTable
from app.ui.widgets.qr_code import QrCode


class WalletView(QWidget):
    """Laid out once; ``display_address`` renders history addresses, ``faucet`` shows its button."""

    def __init__(self, display_address: Callable[[str], str], *, faucet: bool) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)
        cards = QHBoxLayout()
        self.balance_card = Card("Balance", "—", "")
        self.offline_badge = QLabel("Offline")
        self.offline_badge.setObjectName("OfflineBadge")
        self.offline_badge.setToolTip("The last known balance is shown; it refreshes when online.")
        title_row = QHBoxLayout()
        vbox_of(self.balance_card).removeWidget(self.balance_card.caption)
        title_row.addWidget(self.balance_card.caption)
        title_row.addStretch(1)
        title_row.addWidget(self.offline_badge)
        vbox_of(self.balance_card).insertLayout(0, title_row)
        self.node_card = Card("Node wallet (worker gas)", "—", "")
        self.top_up_button = push_button("Top up from my wallet")
        self.create_node_button = push_button("Create node wallet")
        node_buttons = QHBoxLayout()
        node_buttons.addWidget(self.top_up_button)
        node_buttons.addWidget(self.create_node_button)
        node_buttons.addStretch(1)
        vbox_of(self.node_card).addLayout(node_buttons)
        for card in (self.balance_card, self.node_card):
            vbox_of(card).addStretch(1)  # both cards start at the top, whatever their height
        cards.addWidget(self.balance_card, 1)
        cards.addWidget(self.node_card, 1)
        layout.addLayout(cards)
        layout.addWidget(self._address_card())
        layout.addLayout(self._actions(faucet))
        self.pending_label = message_label("Warning")
        layout.addWidget(self.pending_label)
        self.history = HistoryTable(display_address)
        self.history.setMinimumHeight(160)
        layout.addWidget(self.history, 1)
        self.more_button = push_button("Load older transfers")
        layout.addWidget(self.more_button, 0, Qt.AlignmentFlag.AlignLeft)

    def _address_card(self) -> Card:
        card = Card("Your address", "", "")
        card.value.hide()
        self.address = QLineEdit()
        self.address.setReadOnly(True)
        self.address.setObjectName("Address")
        self.copy_button = push_button("Copy")
        # The plain address rather than a ton://transfer/ link: every wallet app's scanner reads
        # both, and a plain address is also what exchanges' deposit scanners and humans expect.
        self.qr_code = QrCode(what="receive address")
        row = QHBoxLayout()
        row.addWidget(self.address, 1)
        row.addWidget(self.copy_button)
        row.addWidget(self.qr_code)
        vbox_of(card).insertLayout(1, row)
        self.owner_label = card.detail
        self.owner_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.earnings_label = message_label("Muted")
        vbox_of(card).addWidget(self.earnings_label)
        return card

    def _actions(self, faucet: bool) -> QHBoxLayout:
        row = QHBoxLayout()
        self.withdraw_button = push_button("Withdraw…", primary=True)
        self.refresh_button = push_button("Refresh")
        self.export_button = push_button("Export CSV…")
        self.faucet_button = push_button("Get 10 test TON")
        self.faucet_button.setVisible(faucet)
        self.lock_button = push_button("Lock")
        for button in (
            self.withdraw_button,
            self.refresh_button,
            self.export_button,
            self.faucet_button,
        ):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.lock_button)
        return row
