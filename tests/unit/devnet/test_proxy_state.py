"""The test proxy's database and ledger: seed once, atomic rows, counters in order, resuming."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from app.devnet.proxy_state import (
    STATE_FILE,
    ProxyLedger,
    ProxyState,
    StoredCounters,
    WorkerTally,
    lose_database,
)

OWNER = "0:" + "ab" * 32
OTHER = "0:" + "cd" * 32


def _counters(tally: WorkerTally) -> tuple[int, int, int]:
    return tally.max_tokens, tally.tokens_committed_to_db, tally.tokens_committed_to_blockchain


def test_the_seed_is_generated_once_and_kept_in_a_wal_database(tmp_path: Path) -> None:
    state = ProxyState(tmp_path / "devnet")
    seed = state.seed()
    assert len(seed) == 32
    assert state.seed() == seed
    state.close()
    again = ProxyState(tmp_path / "devnet")
    assert again.seed() == seed
    again.close()
    conn = sqlite3.connect(tmp_path / "devnet" / STATE_FILE)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()
    memory = ProxyState(None)
    assert memory.seed() != seed  # no folder: a new proxy each time
    memory.close()


def test_rows_round_trip_and_replace(tmp_path: Path) -> None:
    state = ProxyState(tmp_path)
    state.save([StoredCounters(OWNER, 5, 5, 3, 2), StoredCounters(OTHER, 1, 1, 0, 1)])
    state.save([StoredCounters(OWNER, 9, 9, 5, 3)])
    state.save([])
    state.close()
    reopened = ProxyState(tmp_path)
    assert reopened.load() == [StoredCounters(OWNER, 9, 9, 5, 3), StoredCounters(OTHER, 1, 1, 0, 1)]
    reopened.close()


async def test_counters_move_max_then_db_then_blockchain(tmp_path: Path) -> None:
    state = ProxyState(tmp_path)
    ledger = ProxyLedger(state)
    await ledger.load()
    ledger.bill(OWNER, 40)
    ledger.bill(OWNER, 2)
    tally = ledger.tally(OWNER)
    assert (_counters(tally), tally.requests) == ((42, 0, 0), 2)
    assert await ledger.anchor() == []  # nothing in the database to anchor yet
    assert await ledger.commit_to_db() == 42
    assert _counters(tally) == (42, 42, 0)
    ledger.bill(OWNER, 8)
    assert _counters(tally) == (50, 42, 0)
    assert await ledger.anchor() == [tally]  # anchors what the database held, not the memory
    assert _counters(tally) == (50, 42, 42)
    assert (tally.db_tokens, tally.committed_tokens) == (42, 42)
    assert await ledger.commit_to_db() == 8
    assert await ledger.commit_to_db() == 0
    assert _counters(tally) == (50, 50, 42)
    ledger.bill(OWNER, 7)  # lost with the proxy's memory
    state.close()

    resumed = ProxyLedger(ProxyState(tmp_path))
    await resumed.load()
    again = resumed.tally(OWNER)
    assert (_counters(again), again.requests) == ((50, 50, 42), 3)
    assert await resumed.anchor() == [again]
    assert _counters(again) == (50, 50, 50)


async def test_a_lost_database_keeps_the_key_or_not(tmp_path: Path) -> None:
    state = ProxyState(tmp_path)
    seed = state.seed()
    state.save([StoredCounters(OWNER, 5, 5, 5, 1)])
    state.close()
    lose_database(tmp_path)
    state = ProxyState(tmp_path)
    assert (state.seed(), state.load()) == (seed, [])
    state.close()
    lose_database(tmp_path, keep_key=False)
    assert not (tmp_path / STATE_FILE).exists()
    state = ProxyState(tmp_path)
    assert state.seed() != seed
    state.close()
    lose_database(tmp_path / "never-used")  # nothing to lose is fine
