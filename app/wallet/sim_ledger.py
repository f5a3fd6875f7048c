"""The simulated chain's storage: accounts and transactions in SQLite (a file, or in memory).

One write transaction (``BEGIN IMMEDIATE``) per chain operation, so several processes can share a
local network file and a crash leaves either all or none of an operation's effects.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.core.money import Nanoton
from app.wallet.chain import (
    AccountState,
    ChainError,
    ChainTransaction,
    InboundMessage,
    OutboundMessage,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    address TEXT PRIMARY KEY, balance INTEGER NOT NULL, status TEXT NOT NULL,
    code BLOB, data BLOB, last_lt INTEGER NOT NULL, last_hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    account TEXT NOT NULL, lt INTEGER NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (account, lt)
);
"""
_BUSY_TIMEOUT_S = 10.0


class Ledger:
    """Thread-safe access to one SQLite database holding a simulated network."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if self._path is not None:
                self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            target = str(self._path) if self._path is not None else ":memory:"
            conn = sqlite3.connect(
                target, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.executescript(_SCHEMA)
            if self._path is not None:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            self._conn = conn
        return self._conn

    @contextlib.contextmanager
    def write(self, *, commit: bool = True) -> Iterator[LedgerWriter]:
        """One atomic operation; rolled back on error (or always, when ``commit`` is false)."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield LedgerWriter(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT" if commit else "ROLLBACK")

    def account(self, address: str) -> AccountState:
        with self._lock:
            return LedgerWriter(self._connection()).account(address)

    def transactions(self, address: str, limit: int, from_lt: int | None) -> list[ChainTransaction]:
        with self._lock:
            rows = self._connection().execute(
                "SELECT payload FROM transactions WHERE account = ? AND lt <= ? "
                "ORDER BY lt DESC LIMIT ?",
                (address, from_lt if from_lt is not None else 2**63 - 1, limit),
            )
            return [decode_transaction(json.loads(payload)) for (payload,) in rows]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class LedgerWriter:
    """Reads and writes inside one open write transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def account(self, address: str) -> AccountState:
        """The account's row; a missing row is a ``nonexist`` account with zero balance."""
        row = self._conn.execute(
            "SELECT balance, status, code, data, last_lt, last_hash FROM accounts "
            "WHERE address = ?",
            (address,),
        ).fetchone()
        if row is None:
            return AccountState(address, Nanoton(0), "nonexist")
        balance, status, code, data, last_lt, last_hash = row
        return AccountState(address, Nanoton(balance), status, code, data, last_lt, last_hash)

    def put_account(self, account: AccountState) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                account.address,
                account.balance,
                account.status,
                account.code,
                account.data,
                account.last_tx_lt,
                account.last_tx_hash,
            ),
        )

    def next_lt(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'lt'").fetchone()
        lt = (row[0] if row else 0) + 1
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('lt', ?)", (lt,))
        return int(lt)

    def add_transaction(self, tx: ChainTransaction) -> None:
        self._conn.execute(
            "INSERT INTO transactions VALUES (?, ?, ?)",
            (tx.account, tx.lt, json.dumps(encode_transaction(tx), sort_keys=True)),
        )


def encode_transaction(tx: ChainTransaction) -> dict[str, Any]:
    """A JSON-ready mapping of ``tx`` (hashes in hex)."""
    return {
        "account": tx.account,
        "hash": tx.hash.hex(),
        "lt": tx.lt,
        "utime": tx.utime,
        "prev_lt": tx.prev_lt,
        "prev_hash": tx.prev_hash.hex(),
        "in_msg": None if tx.in_msg is None else _encode_in(tx.in_msg),
        "out_msgs": [
            {
                "destination": m.destination,
                "value": m.value,
                "comment": m.comment,
                "bounce": m.bounce,
            }
            for m in tx.out_msgs
        ],
        "total_fees": tx.total_fees,
        "compute_success": tx.compute_success,
        "compute_exit_code": tx.compute_exit_code,
        "action_success": tx.action_success,
        "aborted": tx.aborted,
        "in_msg_normalized_hash": (
            None if tx.in_msg_normalized_hash is None else tx.in_msg_normalized_hash.hex()
        ),
    }


def _encode_in(message: InboundMessage) -> dict[str, Any]:
    return {
        "external": message.external,
        "source": message.source,
        "value": message.value,
        "comment": message.comment,
        "bounced": message.bounced,
        "bounce": message.bounce,
    }


def decode_transaction(raw: dict[str, Any]) -> ChainTransaction:
    """The inverse of :func:`encode_transaction`."""
    try:
        in_raw = raw["in_msg"]
        norm = raw["in_msg_normalized_hash"]
        return ChainTransaction(
            account=raw["account"],
            hash=bytes.fromhex(raw["hash"]),
            lt=raw["lt"],
            utime=raw["utime"],
            prev_lt=raw["prev_lt"],
            prev_hash=bytes.fromhex(raw["prev_hash"]),
            in_msg=None
            if in_raw is None
            else InboundMessage(
                external=in_raw["external"],
                source=in_raw["source"],
                value=Nanoton(in_raw["value"]),
                comment=in_raw["comment"],
                bounced=in_raw["bounced"],
                bounce=in_raw["bounce"],
            ),
            out_msgs=tuple(
                OutboundMessage(m["destination"], Nanoton(m["value"]), m["comment"], m["bounce"])
                for m in raw["out_msgs"]
            ),
            total_fees=Nanoton(raw["total_fees"]),
            compute_success=raw["compute_success"],
            compute_exit_code=raw["compute_exit_code"],
            action_success=raw["action_success"],
            aborted=raw["aborted"],
            in_msg_normalized_hash=None if norm is None else bytes.fromhex(norm),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ChainError("The local network's data file is damaged.") from exc
