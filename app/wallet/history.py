"""A wallet's history: transfers in and out with comments, fees and bounces, paged by (lt, hash),
and its CSV export (exact decimal TON amounts, ISO 8601 UTC times)."""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from app.core.money import Nanoton, format_ton
from app.wallet.chain import ChainBackend, ChainTransaction, raw_address

DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 256
CSV_COLUMNS: Final = (
    "time_utc",
    "direction",
    "status",
    "counterparty",
    "amount_ton",
    "fee_ton",
    "comment",
    "lt",
    "tx_hash",
)
# Spreadsheets run cells that start with these as formulas (CSV injection).
_FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")


class Direction(enum.StrEnum):
    INCOMING = "in"
    OUTGOING = "out"
    BOUNCED = "bounced"  # money that came back from a bounceable send
    NO_TRANSFER = "none"  # the wallet paid a fee but sent nothing (failed or ignored action)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One row of the history. ``amount`` is always positive; ``direction`` says which way."""

    lt: int
    tx_hash: bytes
    utime: int
    direction: Direction
    counterparty: str | None
    amount: Nanoton
    fee: Nanoton
    comment: str | None
    ok: bool

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.utime, UTC)


@dataclass(frozen=True, slots=True)
class HistoryCursor:
    """Where the next (older) page starts: the transaction ``(lt, hash)``."""

    lt: int
    tx_hash: bytes


@dataclass(frozen=True, slots=True)
class HistoryPage:
    entries: tuple[HistoryEntry, ...]
    next_cursor: HistoryCursor | None


def entries_of(tx: ChainTransaction) -> list[HistoryEntry]:
    """The rows one transaction contributes (one per outgoing message; fees on the first)."""
    ok = not tx.aborted and tx.compute_success is not False and tx.action_success is not False

    def row(
        direction: Direction, who: str | None, amount: Nanoton, fee: Nanoton, comment: str | None
    ) -> HistoryEntry:
        good = ok and direction is not Direction.NO_TRANSFER
        return HistoryEntry(tx.lt, tx.hash, tx.utime, direction, who, amount, fee, comment, good)

    in_msg = tx.in_msg
    rows: list[HistoryEntry] = []
    if in_msg is not None and not in_msg.external and in_msg.value > 0:
        direction = Direction.BOUNCED if in_msg.bounced else Direction.INCOMING
        rows.append(row(direction, in_msg.source, in_msg.value, tx.total_fees, in_msg.comment))
    for out in tx.out_msgs:
        fee = Nanoton(0) if rows else tx.total_fees
        rows.append(row(Direction.OUTGOING, out.destination, out.value, fee, out.comment))
    if not rows and tx.total_fees > 0:
        rows.append(row(Direction.NO_TRANSFER, None, Nanoton(0), tx.total_fees, None))
    return rows


class WalletHistory:
    """Reads one address's history from a chain backend, newest first."""

    def __init__(self, chain: ChainBackend, address: str) -> None:
        self._chain = chain
        self._address = raw_address(address)

    async def page(
        self, cursor: HistoryCursor | None = None, *, limit: int = DEFAULT_PAGE_SIZE
    ) -> HistoryPage:
        """Up to ``limit`` transactions starting at ``cursor`` (newest when None)."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"page size must be 1..{MAX_PAGE_SIZE}")
        txs = await self._chain.get_transactions(
            self._address,
            limit,
            cursor.lt if cursor else None,
            cursor.tx_hash if cursor else None,
        )
        entries = tuple(entry for tx in txs for entry in entries_of(tx))
        last = txs[-1] if len(txs) == limit else None
        more = last is not None and last.prev_lt != 0
        next_cursor = HistoryCursor(last.prev_lt, last.prev_hash) if last and more else None
        return HistoryPage(entries, next_cursor)

    async def entries(self, *, max_transactions: int = 10_000) -> list[HistoryEntry]:
        """The whole history (bounded), for the CSV export."""
        out: list[HistoryEntry] = []
        cursor: HistoryCursor | None = None
        seen = 0
        while seen < max_transactions:
            limit = min(MAX_PAGE_SIZE, max_transactions - seen)
            page = await self.page(cursor, limit=limit)
            out.extend(page.entries)
            seen += limit
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return out


def history_csv(
    entries: Iterable[HistoryEntry], *, show_address: Callable[[str], str] = str
) -> str:
    """CSV text with a header row; amounts are exact decimal TON, times ISO 8601 in UTC."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow(
            (
                entry.time.isoformat().replace("+00:00", "Z"),
                entry.direction.value,
                "ok" if entry.ok else "failed",
                show_address(entry.counterparty) if entry.counterparty else "",
                format_ton(entry.amount),
                format_ton(entry.fee),
                _safe_cell(entry.comment or ""),
                str(entry.lt),
                entry.tx_hash.hex(),
            )
        )
    return buffer.getvalue()


def _safe_cell(text: str) -> str:
    return f"'{text}" if text.startswith(_FORMULA_PREFIXES) else text
