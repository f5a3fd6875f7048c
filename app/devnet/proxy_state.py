"""The test-mode proxy's state: its Ed25519 seed and, per worker owner, the three token counters.

:class:`ProxyLedger` keeps the tallies (docs/protocol.md §6.1) and moves them from memory to the
database and from the database to "the blockchain", like ``ProxySignedPayments`` of the reference.
:class:`ProxyState` is the database: one SQLite file in the devnet state folder (WAL,
``synchronous=FULL``, one transaction per write), or in memory when there is no folder. A proxy
restarted on the same folder resumes the same key (hence the same contract addresses) and
counters; :func:`lose_database` simulates a proxy that lost that database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

STATE_FILE: Final = "test-proxy.sqlite3"
_SEED_BYTES: Final = 32
_BUSY_TIMEOUT_S: Final = 10.0
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS workers (
    owner TEXT PRIMARY KEY,
    max_tokens INTEGER NOT NULL,
    db_tokens INTEGER NOT NULL,
    chain_tokens INTEGER NOT NULL,
    requests INTEGER NOT NULL
);
"""


class ProxyStateError(Exception):
    """The proxy's database holds something this code never writes."""


@dataclass(frozen=True, slots=True)
class StoredCounters:
    """One worker owner's row: counters in adjusted tokens, ``owner`` in raw form (``0:hex``)."""

    owner: str
    max_tokens: int
    db_tokens: int
    chain_tokens: int
    requests: int


class ProxyState:
    """Thread-safe access to the proxy's database (``state_dir`` None: in memory)."""

    def __init__(self, state_dir: Path | None) -> None:
        self.path = state_dir / STATE_FILE if state_dir is not None else None
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            target = str(self.path) if self.path is not None else ":memory:"
            conn = sqlite3.connect(
                target, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            if self.path is not None:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def seed(self) -> bytes:
        """The proxy's Ed25519 seed: generated and stored on first use, the same ever after."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('seed', ?)",
                (os.urandom(_SEED_BYTES),),
            )
            (value,) = conn.execute("SELECT value FROM meta WHERE key = 'seed'").fetchone()
        if not isinstance(value, bytes) or len(value) != _SEED_BYTES:
            raise ProxyStateError(f"the test proxy's seed in {self.path} is not 32 bytes")
        return value

    def load(self) -> list[StoredCounters]:
        """Every owner's stored counters."""
        with self._lock:
            rows = self._connection().execute(
                "SELECT owner, max_tokens, db_tokens, chain_tokens, requests FROM workers "
                "ORDER BY owner"
            )
            return [StoredCounters(*row) for row in rows]

    def save(self, rows: Iterable[StoredCounters]) -> None:
        """Write these owners' rows in one transaction (all or nothing)."""
        values = [(r.owner, r.max_tokens, r.db_tokens, r.chain_tokens, r.requests) for r in rows]
        if not values:
            return
        with self._write() as conn:
            conn.executemany("INSERT OR REPLACE INTO workers VALUES (?, ?, ?, ?, ?)", values)

    def forget_counters(self) -> None:
        """Delete every owner's row (the seed stays)."""
        with self._write() as conn:
            conn.execute("DELETE FROM workers")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def lose_database(state_dir: Path, *, keep_key: bool = True) -> None:
    """Simulate a proxy that lost its database (call it while that proxy is stopped).

    ``keep_key``: only the counters go, as when a reference proxy's database is wiped but its key
    (kept apart from the database) survives: same key and contracts, every tally back at zero.
    Otherwise the whole file goes and the next start is a new proxy with a new key.
    """
    path = state_dir / STATE_FILE
    if keep_key:
        if path.exists():
            state = ProxyState(state_dir)
            try:
                state.forget_counters()
            finally:
                state.close()
        return
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


@dataclass(slots=True)
class WorkerTally:
    """One worker owner's counters in adjusted tokens: ``max_tokens ≥ db ≥ blockchain``.

    ``owner`` is the raw address (``0:hex``): the proxy keys workers by owner, whatever form of
    the address they sent.
    """

    owner: str
    max_tokens: int = 0
    tokens_committed_to_db: int = 0
    tokens_committed_to_blockchain: int = 0
    requests: int = 0
    stored: StoredCounters | None = None  # the row as last written

    @property
    def db_tokens(self) -> int:
        return self.tokens_committed_to_db

    @property
    def committed_tokens(self) -> int:
        """What vouchers are for: the on-chain-anchored amount."""
        return self.tokens_committed_to_blockchain


class ProxyLedger:
    """The tallies in memory and their two commits; writes run in a worker thread.

    :meth:`commit_to_db` and :meth:`anchor` must not overlap (the proxy calls both from one
    task); :meth:`bill` may run at any time on the event loop.
    """

    def __init__(self, state: ProxyState) -> None:
        self._state = state
        self._tallies: dict[str, WorkerTally] = {}

    async def load(self) -> None:
        """Resume from the database: ``max_tokens`` restarts at the committed-to-db amount."""
        rows = await asyncio.to_thread(self._state.load)
        self._tallies = {
            row.owner: WorkerTally(
                row.owner,
                max_tokens=row.db_tokens,
                tokens_committed_to_db=row.db_tokens,
                tokens_committed_to_blockchain=row.chain_tokens,
                requests=row.requests,
                stored=row,
            )
            for row in rows
        }

    def tally(self, owner: str) -> WorkerTally:
        tally = self._tallies.get(owner)
        if tally is None:
            tally = self._tallies[owner] = WorkerTally(owner)
        return tally

    def tallies(self) -> list[WorkerTally]:
        return list(self._tallies.values())

    def bill(self, owner: str, tokens: int) -> WorkerTally:
        tally = self.tally(owner)
        tally.requests += 1
        tally.max_tokens += tokens
        return tally

    async def commit_to_db(self) -> int:
        """Write every changed tally (db := max); returns the tokens this commit added."""
        rows: list[tuple[WorkerTally, StoredCounters]] = []
        for tally in self._tallies.values():
            row = StoredCounters(
                tally.owner,
                max_tokens=tally.max_tokens,
                db_tokens=tally.max_tokens,
                chain_tokens=tally.tokens_committed_to_blockchain,
                requests=tally.requests,
            )
            if row != tally.stored:
                rows.append((tally, row))
        await asyncio.to_thread(self._state.save, [row for _, row in rows])
        added = 0
        for tally, row in rows:
            added += row.db_tokens - tally.tokens_committed_to_db
            tally.tokens_committed_to_db = row.db_tokens
            tally.stored = row
        return added

    async def anchor(self) -> list[WorkerTally]:
        """Anchor what the database holds (blockchain := db); returns the tallies that moved.

        The new amounts are written before they count, so no voucher is ever for more than a
        restarted proxy would know.
        """
        rows = [
            (tally, replace(tally.stored, chain_tokens=tally.stored.db_tokens))
            for tally in self._tallies.values()
            if tally.stored is not None and tally.stored.db_tokens > tally.stored.chain_tokens
        ]
        await asyncio.to_thread(self._state.save, [row for _, row in rows])
        for tally, row in rows:
            tally.tokens_committed_to_blockchain = row.chain_tokens
            tally.stored = row
        return [tally for tally, _ in rows]
