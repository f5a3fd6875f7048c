"""``WithdrawDialog``: details (checked live) → review (fee, bounce, warnings to confirm) → result.

Nothing is signed before the review step's Send; every warning the plan carries must be ticked
first. While the transfer is being signed and broadcast the dialog cannot be closed; afterwards
a pending transfer is followed (refreshing) without blocking anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.ui.dialogs.building_blocks import GuardedDialog, button_row, message_label
from app.ui.dialogs.clipboard_guard import ClipboardGuard
from app.ui.dialogs.withdraw_review import receipt_text, review_lines, ton
from app.ui.qt_async import async_slot
from app.ui.theme import restyle
from app.ui.viewmodels.wallet import Failure, WalletViewModel
from app.wallet.pending import SendStatus
from app.wallet.transfer import MAX_COMMENT_CHARS
from app.wallet.withdrawals import WarningKind, WithdrawalPlan, WithdrawalRequest

PENDING_POLL_S: Final = 3.0
_MEMO_HINT = (
    "Sending to an exchange? Copy the comment (memo) it gave you exactly: without it the "
    "deposit may not be credited."
)
DETAILS, REVIEW, RESULT = 0, 1, 2


class WithdrawDialog(GuardedDialog):
    """Sends TON from the active wallet; ``request`` pre-fills the form (e.g. a top-up);
    ``poll_s`` is how often a pending transfer is re-checked."""

    def __init__(
        self,
        view_model: WalletViewModel,
        request: WithdrawalRequest | None = None,
        parent: QWidget | None = None,
        *,
        poll_s: float = PENDING_POLL_S,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Withdraw TON")
        self._poll_s = poll_s
        self.setMinimumWidth(600)
        self._vm = view_model
        self._plan: WithdrawalPlan | None = None
        self._request: WithdrawalRequest | None = None
        self._follow: asyncio.Task[None] | None = None
        self.status: SendStatus | None = None  # the last receipt's status
        self.confirmations: dict[WarningKind, QCheckBox] = {}
        self.summary_lines: list[str] = []  # the review step's sentences (HTML)
        self.steps = QStackedWidget()
        self.steps.addWidget(self._details_step())
        self.steps.addWidget(self._review_step())
        self.steps.addWidget(self._result_step())
        QVBoxLayout(self).addWidget(self.steps)
        if request is not None:
            self.destination.setText(request.destination)
            self.amount.setText(request.amount)
            self.comment.setText(request.comment or "")
        self._destination_changed()
        self._amount_changed()

    # -- step 1: details --------------------------------------------------------------------

    def _details_step(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        state = self._vm.state
        source = state.active.address if state.active else "—"
        available = ton(state.balance) if state.balance is not None else "unknown"
        header = message_label("Muted")
        header.setText(f"From {source} · available {available}")
        layout.addWidget(header)
        form = QFormLayout()
        self.destination = QLineEdit()
        self.destination.setPlaceholderText("UQ… or EQ… (48 characters)")
        self.destination.textChanged.connect(self._destination_changed)
        self.destination_note = message_label("Muted")
        self.clipboard_warning = message_label("Warning")
        self.clipboard_guard = ClipboardGuard(self.destination, self.clipboard_warning)
        form.addRow("To", self.destination)
        form.addRow("", self.destination_note)
        form.addRow("", self.clipboard_warning)
        self.amount = QLineEdit()
        self.amount.setPlaceholderText("TON, e.g. 1.5")
        self.amount.textChanged.connect(self._amount_changed)
        self.max_button = QPushButton("Max")
        self.max_button.setCheckable(True)
        self.max_button.setToolTip("Send the whole balance; the fee is taken from it")
        self.max_button.toggled.connect(self._max_toggled)
        amount_row = QHBoxLayout()
        amount_row.addWidget(self.amount, 1)
        amount_row.addWidget(self.max_button)
        self.amount_note = message_label()
        form.addRow("Amount", amount_row)
        form.addRow("", self.amount_note)
        self.comment = QLineEdit()
        self.comment.setMaxLength(MAX_COMMENT_CHARS)
        self.comment.setPlaceholderText("optional")
        memo = message_label("Muted")
        memo.setText(_MEMO_HINT)
        form.addRow("Comment", self.comment)
        form.addRow("", memo)
        layout.addLayout(form)
        self.details_error = message_label()
        layout.addWidget(self.details_error)
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.reject)
        self.review_button = QPushButton("Review…")
        self.review_button.setObjectName("Primary")
        self.review_button.clicked.connect(self._on_review)
        layout.addStretch(1)
        layout.addLayout(button_row(cancel, self.review_button))
        return page

    def _destination_changed(self) -> None:
        text = self.destination.text()
        if not text.strip():
            self._note(self.destination_note, "Muted", "")
            return
        check = self._vm.check_address(text)
        if check.parsed is None:
            self._note(self.destination_note, "Error", check.error)
        elif check.notes:
            self._note(self.destination_note, "Warning", "\n".join(check.notes))
        else:
            kind = "bounceable" if check.parsed.bounceable else "non-bounceable"
            self._note(self.destination_note, "Muted", f"✓ Valid address ({kind}).")

    def _amount_changed(self) -> None:
        text = self.amount.text()
        if self.max_button.isChecked() or not text.strip():
            self.amount_note.setText("")
            return
        self.amount_note.setText(self._vm.check_amount(text))

    def _max_toggled(self, checked: bool) -> None:
        self.amount.setEnabled(not checked)
        self.amount.setPlaceholderText(
            "whole balance minus the fee" if checked else "TON, e.g. 1.5"
        )
        if checked:
            self.amount.clear()
        self._amount_changed()

    @staticmethod
    def _note(label: QLabel, kind: str, text: str) -> None:
        label.setText(text)
        restyle(label, kind)

    def current_request(self) -> WithdrawalRequest:
        return WithdrawalRequest(
            destination=self.destination.text().strip(),
            amount=self.amount.text(),
            send_all=self.max_button.isChecked(),
            comment=self.comment.text() or None,
        )

    @async_slot()
    async def _on_review(self) -> None:
        await self.review()

    async def review(self) -> bool:
        """Plan the withdrawal (checks address, amount, balance, fee); show it for review."""
        request = self.current_request()
        self.review_button.setEnabled(False)
        self.details_error.setText("Checking…")
        try:
            plan = await self._vm.plan_withdrawal(request)
        finally:
            self.review_button.setEnabled(True)
        if isinstance(plan, Failure):
            self.details_error.setText(plan.text)
            return False
        self.details_error.setText("")
        self._plan, self._request = plan, request
        self._show_review(plan)
        self.steps.setCurrentIndex(REVIEW)
        return True

    # -- step 2: review ---------------------------------------------------------------------

    def _review_step(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        # Word-wrapped sentences inside a QStackedWidget get too little height (the stack
        # ignores height-for-width); a resizable scroll area lays them out properly.
        content = QWidget()
        inner = QVBoxLayout(content)
        inner.setContentsMargins(0, 0, 8, 0)
        self.summary = QVBoxLayout()
        self.summary.setSpacing(6)
        inner.addLayout(self.summary)
        self.warnings_box = QVBoxLayout()
        inner.addLayout(self.warnings_box)
        self.send_error = message_label()
        inner.addWidget(self.send_error)
        inner.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumHeight(320)
        scroll.setWidget(content)
        layout.addWidget(scroll, 1)
        back = QPushButton("Back")
        back.clicked.connect(lambda: self.steps.setCurrentIndex(DETAILS))
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("Primary")
        self.send_button.clicked.connect(self._on_send)
        layout.addLayout(button_row(back, self.send_button))
        return page

    def _show_review(self, plan: WithdrawalPlan) -> None:
        for box in (self.summary, self.warnings_box):
            while (item := box.takeAt(0)) is not None:
                if (widget := item.widget()) is not None:
                    widget.deleteLater()
        self.summary_lines = review_lines(plan, self._vm.display_address)
        for line in self.summary_lines:
            label = QLabel(line)
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setWordWrap(True)
            self.summary.addWidget(label)
        self.confirmations = {}
        for warning in plan.warnings:
            text = message_label("Warning")
            text.setText(f"⚠ {warning.message}")
            check = QCheckBox("I understand, send anyway")
            check.toggled.connect(self._update_send_enabled)
            self.warnings_box.addWidget(text)
            self.warnings_box.addWidget(check)
            self.confirmations[warning.kind] = check
        self.send_error.setText("")
        self._update_send_enabled()

    def _update_send_enabled(self) -> None:
        confirmed = all(check.isChecked() for check in self.confirmations.values())
        self.send_button.setEnabled(confirmed and not self.is_working)

    @async_slot()
    async def _on_send(self) -> None:
        await self.send()

    async def send(self) -> bool:
        """Sign and broadcast the reviewed plan; shows the result step unless it was refused."""
        if self._plan is None or self._request is None or self.is_working:
            return False
        confirmed = frozenset(k for k, check in self.confirmations.items() if check.isChecked())
        self.result_title.setText("Sending…")
        self.result_detail.setText("Signing and handing the transfer to the network.")
        self.steps.setCurrentIndex(RESULT)
        try:
            # Esc and Close are refused until the outcome is known.
            with self.working(self.send_button, self.close_button):
                receipt = await self._vm.withdraw(self._plan, self._request, confirmed)
        finally:
            self._update_send_enabled()
        if isinstance(receipt, Failure):
            self.steps.setCurrentIndex(REVIEW)
            self.send_error.setText(f"{receipt.text}\nNothing was sent.")
            return False
        self.status = receipt.status
        title, detail = receipt_text(receipt)
        self.result_title.setText(title)
        self.result_detail.setText(detail)
        if receipt.status in (SendStatus.PENDING, SendStatus.UNKNOWN):
            self._follow = asyncio.create_task(self._follow_pending())
        return True

    # -- step 3: result ---------------------------------------------------------------------

    def _result_step(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.result_title: QLabel = QLabel("")
        self.result_title.setObjectName("BigValue")
        self.result_detail: QLabel = QLabel("")
        self.result_detail.setWordWrap(True)
        self.close_button: QPushButton = QPushButton("Close")
        self.close_button.clicked.connect(self.accept)
        layout.addWidget(self.result_title)
        layout.addWidget(self.result_detail)
        layout.addStretch(1)
        layout.addLayout(button_row(self.close_button))
        return page

    async def _follow_pending(self) -> None:
        """Refresh until the wallet no longer has a pending send (the dialog may be closed)."""
        while self._vm.state.pending_send is not None:
            await asyncio.sleep(self._poll_s)
            await self._vm.refresh()
        self.result_title.setText("Settled")
        self.result_detail.setText(
            "The network has processed the transfer. Its result is in the wallet's history."
        )

    # -- closing ----------------------------------------------------------------------------

    def done(self, code: int) -> None:
        if self._follow is not None and not self._follow.done():
            self._follow.cancel()  # only following; the wallet keeps tracking the send itself
        self.clipboard_guard.stop()
        self.destination.clear()
        self.amount.clear()
        self.comment.clear()
        super().done(code)

    async def wait_followed(self) -> None:
        """For callers that close the dialog: wait until the follow-up task has ended."""
        if self._follow is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
