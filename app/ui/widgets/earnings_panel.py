"""``EarningsPanel``: the payments ledger on the dashboard — Earned, Vouchered (what can be cashed
out) and Paid to your wallet — with Cash out now and its outcome on one line below."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from app.core.money import format_ton
from app.ui.qt_async import async_slot
from app.ui.theme import restyle
from app.ui.viewmodels.payouts import CashoutResult, EarningsView, PayoutViewModel


class Figure:
    """A caption, a value and a detail line, stacked in one column of the panel's grid."""

    def __init__(self, grid: QGridLayout, column: int, caption: str) -> None:
        self.caption = QLabel(caption)
        self.caption.setObjectName("CardTitle")
        self.value = QLabel("0 TON")
        self.value.setObjectName("BigValue")
        self.value.setStyleSheet("font-size: 22px;")
        self.detail = QLabel("")
        self.detail.setObjectName("Muted")
        self.detail.setWordWrap(True)
        for row, label in enumerate((self.caption, self.value, self.detail)):
            grid.addWidget(label, row, column)

    def show(self, nanoton: int, detail: str) -> None:
        self.value.setText(format_ton(nanoton, trim=True, unit=True))
        self.value.setToolTip(format_ton(nanoton, unit=True))
        self.detail.setText(detail)


class EarningsPanel(QFrame):
    """A card over a :class:`PayoutViewModel`; ``cash_out`` is public so tests can await it."""

    def __init__(self, payouts: PayoutViewModel) -> None:
        super().__init__()
        self.setObjectName("Card")
        self._payouts = payouts
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 14)
        layout.setSpacing(10)
        grid = QGridLayout()
        grid.setHorizontalSpacing(24)
        grid.setVerticalSpacing(2)
        self.earned = Figure(grid, 0, "Earned")
        self.vouchered = Figure(grid, 1, "Vouchered")
        self.paid = Figure(grid, 2, "Paid to your wallet")
        self.vouchered.detail.setToolTip(
            "Covered by vouchers the proxies signed: what is not paid yet can be cashed out."
        )
        for column in range(3):
            grid.setColumnStretch(column, 1)
        layout.addLayout(grid)
        row = QHBoxLayout()
        self.cash_out_button = QPushButton("Cash out now")
        self.cash_out_button.clicked.connect(self._on_cash_out)
        self.message = QLabel("")
        self.message.setObjectName("Muted")
        self.message.setWordWrap(True)
        row.addWidget(self.cash_out_button)
        row.addWidget(self.message, 1)
        layout.addLayout(row)
        self._reason_shown = ""  # the service's last failure, while the line shows it
        payouts.earnings_changed.connect(self.show_earnings)
        self.show_earnings(payouts.earnings)

    def show_earnings(self, view: EarningsView) -> None:
        self.earned.show(view.earned_nanoton, "counted by the proxies")
        cashable = format_ton(view.cashable_nanoton, trim=True, unit=True)
        self.vouchered.show(
            view.vouchered_nanoton,
            f"signed · {cashable} not paid yet" if view.cashable_nanoton else "signed · all paid",
        )
        fees = format_ton(view.fees_nanoton, trim=True, unit=True)
        self.paid.show(
            view.paid_nanoton, f"network fees {fees}" if view.fees_nanoton else "no cash-out yet"
        )
        self.cash_out_button.setEnabled(view.can_cash_out)
        self.cash_out_button.setToolTip(view.cash_out_hint)
        if view.reason != self._reason_shown and self.message.text() in ("", self._reason_line):
            # The policy's own attempts: say why the last one did not go out (until it does).
            self._reason_shown = view.reason
            self._say(CashoutResult(self._reason_line, ok=False))

    @property
    def _reason_line(self) -> str:
        reason = self._reason_shown
        return f"The last cash-out did not go out: {reason}" if reason else ""

    async def cash_out(self) -> CashoutResult:
        self._reason_shown = ""
        self.message.setText("Cashing out…")
        restyle(self.message, "Muted")
        result = await self._payouts.cash_out()
        self._say(result)
        return result

    def _say(self, result: CashoutResult) -> None:
        self.message.setText(result.text)
        restyle(self.message, "Muted" if result.ok else "Error")

    @async_slot()
    async def _on_cash_out(self) -> None:
        await self.cash_out()
