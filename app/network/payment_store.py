"""The payments database of one network: per worker contract the best voucher and counters, one
row per billed job, and every cash-out. SQLite in WAL mode with ``synchronous=FULL``: this is money.

Rows are keyed by the worker-contract address, which is unique per (proxy contract, proxy key,
owner, root params): a proxy that changes its key or contract starts a new account and the old
one keeps its voucher until it is cashed out. Writes run on a worker thread; callers that must
be durable before acting (a cash-out before its broadcast) await them.
"""

from __future__ import annotations

import asyncio
import enum
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Final, TypeVar

from app.core.errors import UserFacingError

T = TypeVar("T")
_DB_TIMEOUT_S: Final = 10.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    worker_sc TEXT PRIMARY KEY,
    proxy_sc TEXT NOT NULL,
    proxy_public_key BLOB NOT NULL,
    owner TEXT NOT NULL,
    fee_per_token INTEGER NOT NULL,
    params_version INTEGER NOT NULL,
    voucher BLOB,
    voucher_tokens INTEGER NOT NULL,
    db_tokens INTEGER NOT NULL,
    max_tokens INTEGER NOT NULL,
    paid_tokens INTEGER NOT NULL,
    deployed INTEGER NOT NULL,
    retired INTEGER NOT NULL,
    note TEXT NOT NULL,
    first_seen REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS billed (
    request_hash TEXT PRIMARY KEY,
    worker_sc TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    position INTEGER NOT NULL,
    fee_per_token INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS billed_position ON billed(worker_sc, position);
CREATE INDEX IF NOT EXISTS billed_at ON billed(at);
CREATE TABLE IF NOT EXISTS payouts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    worker_sc TEXT NOT NULL,
    proxy_sc TEXT NOT NULL,
    kind TEXT NOT NULL,
    tokens_from INTEGER NOT NULL,
    tokens_to INTEGER NOT NULL,
    expected_nanoton INTEGER NOT NULL,
    amount_nanoton INTEGER NOT NULL,
    fee_nanoton INTEGER NOT NULL,
    state TEXT NOT NULL,
    wallet_address TEXT NOT NULL,
    seqno INTEGER NOT NULL,
    valid_until INTEGER NOT NULL,
    boc BLOB NOT NULL,
    normalized_hash BLOB NOT NULL,
    tx_hash BLOB NOT NULL,
    error TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""


class PaymentStoreError(UserFacingError):
    """The payments database cannot be opened or written."""


@dataclass(frozen=True, slots=True)
class ProxyAccount:
    """What one proxy owes this worker through one worker contract, in adjusted tokens.

    ``voucher_tokens`` is the best signed voucher held (cumulative, anchored on-chain by the
    proxy), ``db_tokens``/``max_tokens`` the proxy's last reported tallies, ``paid_tokens`` what
    the worker contract has confirmed paying out. ``fee_per_token`` is the root config's
    ``worker_fee_per_token`` (nanoton) when the account was opened.
    """

    worker_sc: str
    proxy_sc: str
    proxy_public_key: bytes
    owner: str
    fee_per_token: int
    params_version: int
    voucher: bytes | None = None
    voucher_tokens: int = 0
    db_tokens: int = 0
    max_tokens: int = 0
    paid_tokens: int = 0
    deployed: bool = False
    retired: bool = False
    note: str = ""
    first_seen: float = 0.0
    updated_at: float = 0.0

    @property
    def unpaid_tokens(self) -> int:
        """Earned but not yet paid (whether or not a voucher covers it)."""
        return max(self.max_tokens, self.voucher_tokens) - self.paid_tokens

    @property
    def earned_nanoton(self) -> int:
        """Everything the proxy counted for us (its tally, or the voucher if that is higher)."""
        return max(self.max_tokens, self.voucher_tokens) * self.fee_per_token

    @property
    def vouchered_nanoton(self) -> int:
        return self.voucher_tokens * self.fee_per_token

    @property
    def unpaid_nanoton(self) -> int:
        return self.unpaid_tokens * self.fee_per_token

    @property
    def cashable_nanoton(self) -> int:
        """What a cash-out now would pay into the owner's wallet."""
        return self.cashable_tokens * self.fee_per_token

    @property
    def cashable_tokens(self) -> int:
        """Covered by the held voucher and not yet paid: what a cash-out would collect."""
        return max(0, self.voucher_tokens - self.paid_tokens)


class PayoutKind(enum.StrEnum):
    DEPLOY = "deploy"  # the node wallet deploys the worker contract
    PAYOUT = "payout"  # the node wallet sends a voucher to the worker contract


class PayoutState(enum.StrEnum):
    """A cash-out's life: written before its broadcast, resolved from the chain."""

    SIGNED = "signed"  # durable; the broadcast may or may not have happened
    BROADCAST = "broadcast"  # the network accepted the message; waiting for the transaction
    PAID = "paid"  # the owner received ``amount_nanoton``
    FAILED = "failed"  # the chain processed it without paying (``error`` says why)
    NOT_SENT = "not_sent"  # it expired unprocessed; nothing moved

    @property
    def open(self) -> bool:
        return self in (PayoutState.SIGNED, PayoutState.BROADCAST)


@dataclass(frozen=True, slots=True)
class Payout:
    """One message from the node wallet for a worker contract, and what came of it."""

    worker_sc: str
    proxy_sc: str
    kind: PayoutKind
    tokens_from: int
    tokens_to: int
    expected_nanoton: int
    wallet_address: str
    seqno: int
    valid_until: int
    boc: bytes
    normalized_hash: bytes
    state: PayoutState = PayoutState.SIGNED
    amount_nanoton: int = 0
    fee_nanoton: int = 0
    tx_hash: bytes = b""
    error: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    id: int = 0


@dataclass(frozen=True, slots=True)
class BilledJob:
    """A job as the proxy billed it: ``position`` is the proxy's ``max_tokens`` right after it,
    so a voucher for ≥ ``position`` tokens covers it."""

    request_hash: str
    worker_sc: str
    tokens: int
    position: int
    fee_per_token: int
    at: float


_ACCOUNT_COLUMNS = tuple(f.name for f in fields(ProxyAccount))
_PAYOUT_COLUMNS = tuple(f.name for f in fields(Payout) if f.name != "id")
_BILLED_COLUMNS = tuple(f.name for f in fields(BilledJob))


class PaymentStore:
    """Owns ``payments-<network>.sqlite3`` (a service: ``start``/``aclose``); ``path`` None
    keeps everything in memory (tests, and workers built without a data folder)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def start(self) -> None:
        if self._db is None:
            await self._call(self._open)

    async def aclose(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await self._call(db.close)

    # --- accounts -------------------------------------------------------------------------

    async def accounts(self, *, include_retired: bool = True) -> list[ProxyAccount]:
        sql = f"SELECT {', '.join(_ACCOUNT_COLUMNS)} FROM accounts"  # noqa: S608 - constant
        if not include_retired:
            sql += " WHERE retired = 0"
        rows = await self._call(self._select, sql + " ORDER BY first_seen", ())
        return [_account(row) for row in rows]

    async def save_accounts(self, accounts: Iterable[ProxyAccount]) -> None:
        """Insert or replace these accounts in one transaction."""
        batch = list(accounts)
        if batch:
            await self._call(self._write, lambda db: _upsert_accounts(db, batch))

    async def save_billed(self, jobs: Iterable[BilledJob]) -> None:
        batch = list(jobs)
        if not batch:
            return
        marks = ", ".join("?" * len(_BILLED_COLUMNS))
        sql = f"INSERT OR IGNORE INTO billed ({', '.join(_BILLED_COLUMNS)}) VALUES ({marks})"  # noqa: S608
        rows = [tuple(getattr(job, name) for name in _BILLED_COLUMNS) for job in batch]
        await self._call(self._write, lambda db: db.executemany(sql, rows))

    async def billed(self, *, since: float = 0.0) -> list[BilledJob]:
        rows = await self._call(
            self._select,
            f"SELECT {', '.join(_BILLED_COLUMNS)} FROM billed WHERE at >= ? "  # noqa: S608
            "ORDER BY at, position",
            (since,),
        )
        return [BilledJob(*row) for row in rows]

    # --- payouts --------------------------------------------------------------------------

    async def add_payout(self, payout: Payout) -> Payout:
        """Write a new payout record (durable when this returns) and give it its id."""
        now = time.time()
        record = replace(payout, created_at=payout.created_at or now, updated_at=now)

        def insert(db: sqlite3.Connection) -> int:
            marks = ", ".join("?" * len(_PAYOUT_COLUMNS))
            cursor = db.execute(
                f"INSERT INTO payouts ({', '.join(_PAYOUT_COLUMNS)}) VALUES ({marks})",  # noqa: S608
                _payout_row(record),
            )
            return int(cursor.lastrowid or 0)

        return replace(record, id=await self._call(self._write, insert))

    async def update_payout(self, payout: Payout, *, account: ProxyAccount | None = None) -> Payout:
        """Store a payout's new state, with its account's in the same transaction."""
        record = replace(payout, updated_at=time.time())
        assignments = ", ".join(f"{name} = ?" for name in _PAYOUT_COLUMNS)

        def update(db: sqlite3.Connection) -> None:
            db.execute(
                f"UPDATE payouts SET {assignments} WHERE id = ?",  # noqa: S608 - constant
                (*_payout_row(record), record.id),
            )
            if account is not None:
                _upsert_accounts(db, [account])

        await self._call(self._write, update)
        return record

    async def payouts(self, *, open_only: bool = False) -> list[Payout]:
        sql = f"SELECT id, {', '.join(_PAYOUT_COLUMNS)} FROM payouts"  # noqa: S608 - constant
        if open_only:
            sql += " WHERE state IN ('signed', 'broadcast')"
        rows = await self._call(self._select, sql + " ORDER BY id", ())
        return [_payout(row) for row in rows]

    # --- thread side ----------------------------------------------------------------------

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.wait_for(asyncio.to_thread(func, *args), _DB_TIMEOUT_S)
        except sqlite3.Error as exc:
            raise PaymentStoreError(
                f"The payments database could not be used ({exc}).",
                hint=f"Check that {self.path} is readable and the disk is not full; it is kept "
                "as it is (it holds your vouchers).",
            ) from exc

    def _open(self) -> None:
        if self.path is None:
            self._db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            self._db.executescript(_SCHEMA)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Create the file private before SQLite opens it; its -wal/-shm files copy the mode.
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            db.close()
            raise
        self._db = db

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("the payments database is not open")
        return self._db

    def _select(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._connection().execute(sql, params))

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result


def _upsert_accounts(db: sqlite3.Connection, accounts: list[ProxyAccount]) -> None:
    marks = ", ".join("?" * len(_ACCOUNT_COLUMNS))
    db.executemany(
        f"INSERT OR REPLACE INTO accounts ({', '.join(_ACCOUNT_COLUMNS)}) VALUES ({marks})",  # noqa: S608
        [_account_row(account) for account in accounts],
    )


def _account_row(account: ProxyAccount) -> tuple[Any, ...]:
    return tuple(
        int(value) if isinstance(value, bool) else value
        for value in (getattr(account, name) for name in _ACCOUNT_COLUMNS)
    )


def _account(row: tuple[Any, ...]) -> ProxyAccount:
    values = dict(zip(_ACCOUNT_COLUMNS, row, strict=True))
    values["deployed"] = bool(values["deployed"])
    values["retired"] = bool(values["retired"])
    return ProxyAccount(**values)


def _payout_row(payout: Payout) -> tuple[Any, ...]:
    return tuple(getattr(payout, name) for name in _PAYOUT_COLUMNS)


def _payout(row: tuple[Any, ...]) -> Payout:
    values = dict(zip(("id", *_PAYOUT_COLUMNS), row, strict=True))
    values["kind"] = PayoutKind(values["kind"])
    values["state"] = PayoutState(values["state"])
    return Payout(**values)
