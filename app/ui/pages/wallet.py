"""``WalletPage``: set up (create/import), unlock, then balance, node wallet, address, history,
withdrawals and CSV export of the user's TON wallet, all through a ``WalletViewModel``; with a
``PayoutViewModel``, the earnings pending and paid, and payouts marked in the history."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
)

from app.core.money import format_ton
from app.ui.dialogs.building_blocks import message_label
from app.ui.dialogs.create_wallet import CreateWalletDialog
from app.ui.dialogs.import_wallet import ImportWalletDialog
from app.ui.dialogs.modal import run_modal
from app.ui.dialogs.password import NewPasswordDialog
from app.ui.dialogs.withdraw import WithdrawDialog
from app.ui.pages.page import Card, Page
from app.ui.pages.wallet_access import SetupView, UnlockView
from app.ui.pages.wallet_view import WalletView
from app.ui.qt_async import async_slot
from app.ui.theme import restyle
from app.ui.viewmodels.payouts import EarningsView, PayoutViewModel
from app.ui.viewmodels.wallet import Failure, HistoryView, WalletViewModel
from app.wallet.keyring_cache import KeyringStatus
from app.wallet.wallet_state import WalletState
from app.wallet.withdrawals import WithdrawalRequest

SETUP, LOCKED, UNLOCKED = 0, 1, 2
SUBTITLE = (
    "Cash-outs pay your vouchered earnings into the owner address below (the node wallet pays "
    "their gas). Withdraw TON to any wallet at any time."
)


class WalletPage(Page):
    """Shows the wallet for one network; without a view-model, a placeholder (no wallet service).

    ``payouts`` (optional, so the page can be tested alone) adds the ledger's pending and paid
    earnings and labels transfers from a proxy contract as earnings payouts.
    """

    def __init__(
        self, view_model: WalletViewModel | None = None, payouts: PayoutViewModel | None = None
    ) -> None:
        super().__init__("Wallet", SUBTITLE)
        self.dialog: QDialog | None = None  # the dialog open right now (tests drive it)
        if view_model is None:
            self.balance_card = Card("Balance", "—", "No wallet yet")
            self.body.addWidget(self.balance_card)
            hint = QLabel("Create or import a wallet to receive your earnings.")
            hint.setObjectName("Muted")
            self.body.addWidget(hint)
            return
        self._vm = view_model
        self.views = QStackedWidget()
        self.setup_view = SetupView()
        self.create_button = self.setup_view.create_button
        self.import_button = self.setup_view.import_button
        self.create_button.clicked.connect(self._on_create)
        self.import_button.clicked.connect(self._on_import)
        unlock = UnlockView(keyring=view_model.has_keyring)
        self.unlock_card = unlock.card
        self.password = unlock.password
        self.remember = unlock.remember
        self.keyring_note = unlock.keyring_note
        self.unlock_button = unlock.unlock_button
        self.unlock_saved_button = unlock.unlock_saved_button
        self.unlock_error = unlock.error
        self.password.returnPressed.connect(self._on_unlock)
        self.unlock_button.clicked.connect(self._on_unlock)
        self.unlock_saved_button.clicked.connect(self._on_unlock_saved)
        self.views.addWidget(self.setup_view)
        self.views.addWidget(unlock)
        self.views.addWidget(self._wallet_view(view_model))
        self.body.addWidget(self.views, 1)
        outer = self.layout()
        if isinstance(outer, QVBoxLayout):
            outer.setStretchFactor(self.body, 1)  # the history table takes the free height
        self.message = message_label("Muted")
        self.body.addWidget(self.message)
        view_model.state_changed.connect(self._show_state)
        view_model.history_changed.connect(self._show_history)
        view_model.keyring_changed.connect(self._show_keyring)
        view_model.owner_changed.connect(self._show_owner)
        self._show_state(view_model.state)
        self._show_owner(view_model.owner_line())
        status = view_model.keyring_status
        if status is not None:
            self._show_keyring(status)
        self.earnings_label.setVisible(payouts is not None)
        if payouts is not None:
            self.history.is_payout = payouts.is_payout
            payouts.earnings_changed.connect(self._show_earnings)
            payouts.sources_changed.connect(self._relabel_history)
            self._show_earnings(payouts.earnings)

    def _wallet_view(self, view_model: WalletViewModel) -> WalletView:
        view = WalletView(view_model.display_address, faucet=view_model.has_faucet)
        # The widgets tests and commands reach, under the page's own names.
        self.balance_card = view.balance_card
        self.offline_badge = view.offline_badge
        self.node_card = view.node_card
        self.pending_label = view.pending_label
        self.address = view.address
        self.qr_code = view.qr_code
        self.owner_label = view.owner_label
        self.earnings_label = view.earnings_label
        self.history = view.history
        self.more_button = view.more_button
        self.top_up_button = view.top_up_button
        self.create_node_button = view.create_node_button
        self.copy_button = view.copy_button
        self.withdraw_button = view.withdraw_button
        self.refresh_button = view.refresh_button
        self.export_button = view.export_button
        self.faucet_button = view.faucet_button
        self.lock_button = view.lock_button
        for button, slot in (
            (view.top_up_button, self._on_top_up),
            (view.create_node_button, self._on_create_node),
            (view.copy_button, self.copy_address),
            (view.withdraw_button, self._on_withdraw),
            (view.refresh_button, self._on_refresh),
            (view.export_button, self._on_export),
            (view.faucet_button, self._on_faucet),
            (view.lock_button, view_model.lock),
            (view.more_button, self._on_more),
        ):
            button.clicked.connect(slot)
        return view

    # -- state ------------------------------------------------------------------------------

    def _show_state(self, state: WalletState) -> None:
        if state.active is None:
            self.qr_code.set_text("")
            self.views.setCurrentIndex(SETUP)
            return
        self.unlock_card.value.setText(state.active.address)
        self.address.setText(state.active.address)
        self.qr_code.set_text(state.active.address)
        self.views.setCurrentIndex(LOCKED if state.locked else UNLOCKED)
        if state.balance is None:
            self.balance_card.value.setText("—")
        else:
            self.balance_card.value.setText(format_ton(state.balance, trim=True, unit=True))
            self.balance_card.value.setToolTip(format_ton(state.balance, unit=True))
        self.balance_card.detail.setText(_balance_detail(state))
        self.offline_badge.setVisible(state.offline)
        node = state.node_wallet
        if node is None:
            self.node_card.show_value("—", "No node wallet yet. The worker pays gas from it.")
        else:
            self.node_card.show_value(
                format_ton(node.balance, trim=True, unit=True), f"{node.describe()}\n{node.address}"
            )
        self.create_node_button.setVisible(node is None)
        self.top_up_button.setVisible(node is not None)
        self._apply_enabled()
        pending = state.pending_send
        self.pending_label.setVisible(pending is not None)
        if pending is not None:
            amount = (
                "the whole balance"
                if pending.send_all
                else format_ton(pending.amount, trim=True, unit=True)
            )
            self.pending_label.setText(
                f"Sending {amount} to {pending.destination}: waiting for confirmation."
            )
        self.history.show_rows(self._vm.history.entries, pending)

    def _show_history(self, view: HistoryView) -> None:
        self.history.show_rows(view.entries, self._vm.state.pending_send)
        self.more_button.setVisible(view.has_more)

    def _show_keyring(self, status: KeyringStatus) -> None:
        usable = status.available is not False
        self._apply_enabled()
        if not usable:
            self.remember.setChecked(False)
        self.keyring_note.setText("" if usable else status.message)

    def _show_owner(self, line: str) -> None:
        self.owner_label.setText(f"Earnings go to: {line}")

    def _relabel_history(self) -> None:
        self._show_history(self._vm.history)

    def _show_earnings(self, view: EarningsView) -> None:
        self.earnings_label.setText(
            f"Pending: {format_ton(view.cashable_nanoton, trim=True, unit=True)} (vouchered, not "
            f"yet paid) · Paid: {format_ton(view.paid_nanoton, trim=True, unit=True)}"
        )

    def _say(self, result: object, success: str = "") -> bool:
        """Show a command's failure (or ``success``) in the page's message line."""
        if isinstance(result, Failure):
            self.message.setText(result.text)
            restyle(self.message, "Error")
            return False
        self.message.setText(success)
        restyle(self.message, "Muted")
        return True

    # -- commands (public so tests can await them; buttons reach them through slots) --------

    async def create_wallet(self) -> None:
        mnemonic = await self._vm.new_mnemonic()
        if not self._say(mnemonic) or isinstance(mnemonic, Failure):
            return
        if await self._open(CreateWalletDialog(self._vm, mnemonic, self)):
            self._say(None, "Wallet created. Unlock it with your new password.")

    async def import_wallet(self) -> None:
        if await self._open(ImportWalletDialog(self._vm, self)):
            self._say(None, "Wallet imported. Unlock it with your new password.")

    async def unlock(self) -> bool:
        with self._disabled(self.unlock_button):
            result = await self._vm.unlock(self.password.text(), remember=self.remember.isChecked())
        self.password.clear()
        self.unlock_error.setText(result.text if isinstance(result, Failure) else "")
        return not isinstance(result, Failure)

    async def unlock_saved(self) -> bool:
        with self._disabled(self.unlock_saved_button):
            result = await self._vm.unlock_saved()
        self.unlock_error.setText(result.text if isinstance(result, Failure) else "")
        return not isinstance(result, Failure)

    async def refresh(self) -> None:
        with self._disabled(self.refresh_button):
            self._say(await self._vm.refresh())

    async def load_more(self) -> None:
        with self._disabled(self.more_button):
            self._say(await self._vm.load_more_history())

    async def withdraw(self, request: WithdrawalRequest | None = None) -> None:
        await self._open(WithdrawDialog(self._vm, request, self))

    async def top_up(self) -> None:
        request = self._vm.top_up_request()
        if self._say(request) and not isinstance(request, Failure):
            await self.withdraw(request)

    async def create_node_wallet(self) -> None:
        dialog = NewPasswordDialog(
            "Create the node wallet",
            "The worker pays network fees (gas) from a separate node wallet, which needs at least "
            "2.1 TON. Choose a password to encrypt its key on this computer.",
            self._vm.create_node_wallet,
            self,
        )
        if await self._open(dialog):
            self._say(None, "Node wallet created. Top it up from your wallet.")

    async def export_csv(self) -> None:
        dialog = QFileDialog(self, "Export the wallet history", "wallet-history.csv")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter("CSV files (*.csv)")
        dialog.setDefaultSuffix("csv")
        if not await self._open(dialog) or not dialog.selectedFiles():
            return
        path = Path(dialog.selectedFiles()[0])
        with self._disabled(self.export_button):
            rows = await self._vm.export_csv(path)
        self._say(rows, f"Exported {rows} rows to {path}.")

    async def faucet(self) -> None:
        with self._disabled(self.faucet_button):
            self._say(await self._vm.faucet(), "Added 10 test TON.")

    def copy_address(self) -> None:
        """Copy the wallet's (public) address; the user asked for it by clicking Copy."""
        QGuiApplication.clipboard().setText(self.address.text())
        self._say(None, "Address copied.")

    async def _open(self, dialog: QDialog) -> bool:
        self.dialog = dialog
        try:
            accepted = await run_modal(dialog) == QDialog.DialogCode.Accepted
            if isinstance(dialog, WithdrawDialog):
                await dialog.wait_followed()
            return accepted
        finally:
            self.dialog = None
            dialog.deleteLater()

    @contextlib.contextmanager
    def _disabled(self, button: QPushButton) -> Iterator[None]:
        """Disable ``button`` while its command runs, so a double click cannot start it twice."""
        button.setEnabled(False)
        try:
            yield
        finally:
            button.setEnabled(True)
            self._apply_enabled()  # some buttons depend on the state the command changed

    def _apply_enabled(self) -> None:
        node = self._vm.state.node_wallet
        self.top_up_button.setEnabled(node is not None and not node.ready)
        status = self._vm.keyring_status
        usable = status is None or status.available is not False
        self.remember.setEnabled(usable)
        self.unlock_saved_button.setEnabled(usable)

    # -- slots ------------------------------------------------------------------------------

    @async_slot()
    async def _on_create(self) -> None:
        with self._disabled(self.create_button):
            await self.create_wallet()

    @async_slot()
    async def _on_import(self) -> None:
        with self._disabled(self.import_button):
            await self.import_wallet()

    @async_slot()
    async def _on_unlock(self) -> None:
        await self.unlock()

    @async_slot()
    async def _on_unlock_saved(self) -> None:
        await self.unlock_saved()

    @async_slot()
    async def _on_refresh(self) -> None:
        await self.refresh()

    @async_slot()
    async def _on_more(self) -> None:
        await self.load_more()

    @async_slot()
    async def _on_withdraw(self) -> None:
        with self._disabled(self.withdraw_button):
            await self.withdraw()

    @async_slot()
    async def _on_top_up(self) -> None:
        with self._disabled(self.top_up_button):
            await self.top_up()

    @async_slot()
    async def _on_create_node(self) -> None:
        with self._disabled(self.create_node_button):
            await self.create_node_wallet()

    @async_slot()
    async def _on_export(self) -> None:
        await self.export_csv()

    @async_slot()
    async def _on_faucet(self) -> None:
        await self.faucet()


def _balance_detail(state: WalletState) -> str:
    parts: list[str] = []
    if state.last_refresh is not None:
        parts.append(f"Updated {datetime.fromtimestamp(state.last_refresh).strftime('%H:%M:%S')}")
    if state.offline:
        parts.append("offline: showing the last known balance")
    if state.refresh_error:
        parts.append(f"refresh failed: {state.refresh_error}")
    if state.deployed is False and state.balance:
        parts.append("the first send also deploys the wallet (a small one-time fee)")
    return " · ".join(parts) if parts else "Not refreshed yet"
