"""``HistoryTable``: the wallet's transfers (and an unconfirmed send) as a read-only table; money
from a proxy contract this worker works for reads "Earnings payout"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from app.core.money import format_ton
from app.network.ledger_labels import EARNINGS_PAYOUT
from app.wallet.history import Direction, HistoryEntry
from app.wallet.wallet_state import PendingView

COLUMNS: Final = ("Date", "Direction", "Counterparty", "Amount (TON)", "Fee", "Comment", "Status")
_DIRECTIONS: Final = {
    Direction.INCOMING: "Received",
    Direction.OUTGOING: "Sent",
    Direction.BOUNCED: "Bounced back",
    Direction.NO_TRANSFER: "Fee only",
}
_MINUS: Final = "\u2212"  # a real minus sign lines up with "+"
_SIGNS: Final = {Direction.INCOMING: "+", Direction.BOUNCED: "+", Direction.OUTGOING: _MINUS}
_GREEN: Final = QColor("#1f9d55")
_RED: Final = QColor("#b91c1c")
_AMBER: Final = QColor("#b45309")
_EDGE: Final = 6  # characters kept at each end of an elided address


def elide_address(address: str) -> str:
    """``0QDNzc…dTJ`` style: start and end are what people compare (the full one is a tooltip)."""
    if len(address) <= 2 * _EDGE + 1:
        return address
    return f"{address[:_EDGE]}…{address[-_EDGE:]}"


def status_text(entry: HistoryEntry) -> str:
    if entry.direction is Direction.BOUNCED:
        return "Bounced"
    if entry.direction is Direction.NO_TRANSFER:
        return "Failed, fee charged"
    return "Confirmed" if entry.ok else "Failed, fee charged"


class HistoryTable(QTableWidget):
    """Newest first; ``show_address`` turns the chain's raw addresses into the copyable form and
    ``is_payout`` (set by the page) says which transfers are earnings payouts."""

    def __init__(self, show_address: Callable[[str], str]) -> None:
        super().__init__(0, len(COLUMNS))
        self._show = show_address
        self.is_payout: Callable[[HistoryEntry], bool] = lambda _entry: False
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(False)
        self.verticalHeader().setVisible(False)
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMNS.index("Comment"), QHeaderView.ResizeMode.Stretch)

    def show_rows(self, entries: tuple[HistoryEntry, ...], pending: PendingView | None) -> None:
        self.setRowCount(0)
        if pending is not None:
            self._add_pending(pending)
        for entry in entries:
            self._add_entry(entry)

    def _add_pending(self, pending: PendingView) -> None:
        amount = "all" if pending.send_all else f"{_MINUS}{format_ton(pending.amount, trim=True)}"
        until = datetime.fromtimestamp(pending.valid_until).strftime("%H:%M:%S")
        self._append(
            ("now", "Sending", elide_address(pending.destination), amount, "", "", "Pending"),
            tooltips={2: pending.destination, 6: f"Waiting for confirmation (expires {until})"},
            colour=_AMBER,
        )

    def _add_entry(self, entry: HistoryEntry) -> None:
        who = self._show(entry.counterparty) if entry.counterparty else ""
        sign = _SIGNS.get(entry.direction, "")
        amount = f"{sign}{format_ton(entry.amount, trim=True)}" if entry.amount else "0"
        status = status_text(entry)
        colour = _GREEN if sign == "+" else None
        if status != "Confirmed":
            colour = _RED if status.startswith("Failed") else _AMBER
        self._append(
            (
                entry.time.astimezone().strftime("%Y-%m-%d %H:%M"),
                EARNINGS_PAYOUT if self.is_payout(entry) else _DIRECTIONS[entry.direction],
                elide_address(who),
                amount,
                format_ton(entry.fee, trim=True),
                entry.comment or "",
                status,
            ),
            tooltips={2: who, 5: entry.comment or ""},
            colour=colour,
        )

    def _append(
        self, cells: tuple[str, ...], *, tooltips: dict[int, str], colour: QColor | None
    ) -> None:
        row = self.rowCount()
        self.insertRow(row)
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if tooltips.get(column):
                item.setToolTip(tooltips[column])
            if column in (3, 4):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if colour is not None and column in (3, 6):
                item.setForeground(colour)
            self.setItem(row, column, item)
