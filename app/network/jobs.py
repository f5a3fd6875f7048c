"""Job records: one typed row per served request in SQLite (WAL), with retention, queries, export.

Rows hold counts, times and outcomes only: never a prompt, an answer or the raw request id.
Writes are batched and run on a worker thread, so serving never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from app.network.answer import TokensUsed

_log = logging.getLogger(__name__)
T = TypeVar("T")

STATUS_OK = "ok"  # answered, backend 2xx
STATUS_HTTP_ERROR = "http_error"  # the backend's non-2xx answer was forwarded
STATUS_REJECTED = "rejected"  # 621: the request failed validation
STATUS_BUSY = "busy"  # 602: too many active requests
STATUS_FAILED = "failed"  # the backend failed (refused, garbage, broke off, too big)
STATUS_TIMEOUT = "timeout"  # 652
STATUS_CANCELLED = "cancelled"  # the proxy went away or the worker stopped

_DB_TIMEOUT = 10.0
# Records wait this long (or until this many pile up) so that one thread hop writes many:
# handing each record to a thread alone would cost more CPU than serving its request.
_BATCH_DELAY = 0.5
_BATCH_MAX = 500
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_hash TEXT NOT NULL,
    proxy TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    error_code INTEGER NOT NULL,
    error_message TEXT NOT NULL,
    coefficient INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    adjusted_prompt INTEGER NOT NULL,
    adjusted_cached INTEGER NOT NULL,
    adjusted_completion INTEGER NOT NULL,
    adjusted_reasoning INTEGER NOT NULL,
    adjusted_total INTEGER NOT NULL,
    earned_nanotons INTEGER NOT NULL,
    answer_bytes INTEGER NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    energy_wh REAL
);
CREATE INDEX IF NOT EXISTS jobs_finished_at ON jobs(finished_at);
"""
# Columns added after the first release: (name, declaration). A database written by an older
# version gets them on open, its rows keeping NULL ("not measured").
_ADDED_COLUMNS = (("energy_wh", "REAL"),)
_COLUMNS = (
    "request_hash, proxy, model, status, http_status, error_code, error_message, coefficient, "
    "prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens, adjusted_prompt, "
    "adjusted_cached, adjusted_completion, adjusted_reasoning, adjusted_total, earned_nanotons, "
    "answer_bytes, started_at, finished_at, energy_wh"
)


def hash_request_id(request_id: bytes) -> str:
    """The id a job is known by: the sha256 of the proxy's request id, in hex."""
    return hashlib.sha256(request_id).hexdigest()


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One served (or refused) request. Token counts are raw from ``usage``; ``tokens`` adjusted.

    ``energy_wh`` is the GPU energy attributed to the job, or None where nothing measured it.
    """

    request_hash: str
    proxy: str
    model: str
    status: str
    http_status: int
    error_code: int
    error_message: str
    coefficient: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    tokens: TokensUsed
    earned_nanotons: int
    answer_bytes: int
    started_at: float
    finished_at: float
    energy_wh: float | None = None

    def _row(self) -> tuple[Any, ...]:
        t = self.tokens
        return (
            self.request_hash,
            self.proxy,
            self.model,
            self.status,
            self.http_status,
            self.error_code,
            self.error_message,
            self.coefficient,
            self.prompt_tokens,
            self.cached_tokens,
            self.completion_tokens,
            self.reasoning_tokens,
            t.prompt_tokens_used,
            t.cached_tokens_used,
            t.completion_tokens_used,
            t.reasoning_tokens_used,
            t.total_tokens_used,
            self.earned_nanotons,
            self.answer_bytes,
            self.started_at,
            self.finished_at,
            self.energy_wh,
        )

    @classmethod
    def _from_row(cls, row: tuple[Any, ...]) -> JobRecord:
        (hash_, proxy, model, status, http_status, code, message, coefficient) = row[:8]
        prompt, cached, completion, reasoning = row[8:12]
        earned, answer_bytes, started_at, finished_at, energy_wh = row[17:22]
        return cls(
            hash_,
            proxy,
            model,
            status,
            http_status,
            code,
            message,
            coefficient,
            prompt,
            cached,
            completion,
            reasoning,
            TokensUsed(*row[12:17]),
            earned,
            answer_bytes,
            started_at,
            finished_at,
            energy_wh,
        )


@dataclass(frozen=True, slots=True)
class DayTotals:
    """One UTC day of jobs: counts, adjusted tokens, the worker's earnings (nanotons) and the GPU
    energy attributed to them (Wh; None when no job of the day was measured)."""

    day: str
    jobs: int
    succeeded: int
    failed: int
    adjusted_tokens: int
    earned_nanotons: int
    energy_wh: float | None = None


class JobStore:
    """Owns ``jobs.sqlite3``: a service that batches writes and answers the UI's queries.

    Retention keeps at most ``max_records`` rows and none older than ``max_age_days``.
    """

    def __init__(self, path: Path, *, max_records: int = 100_000, max_age_days: int = 90) -> None:
        self.path = path
        self.max_records = max_records
        self.max_age_days = max_age_days
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._pending: list[JobRecord] = []
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        await self._call(self._open)
        self._writer = asyncio.create_task(self._write_loop(), name="job-store-writer")

    async def aclose(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._hurry.set()
        self._wake.set()
        if self._writer is not None:
            await self._writer
            self._writer = None
        if self._db is not None:
            await self._call(self._db.close)
            self._db = None

    def add(self, record: JobRecord) -> None:
        """Queue a record for writing; never blocks."""
        if self._closing:
            _log.warning("job store closed; a job record was not saved")
            return
        self._pending.append(record)
        self._idle.clear()
        self._wake.set()

    async def flush(self) -> None:
        """Write what is queued now and wait until every record added so far is on disk."""
        self._hurry.set()
        await self._idle.wait()

    async def recent(self, limit: int = 100) -> list[JobRecord]:
        rows = await self._query(
            f"SELECT {_COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?",  # noqa: S608 - constant
            (limit,),
        )
        return [JobRecord._from_row(row) for row in rows]

    async def totals_by_day(self, days: int = 30) -> list[DayTotals]:
        since = time.time() - days * 86400
        rows = await self._query(
            "SELECT date(finished_at, 'unixepoch') AS day, COUNT(*), "
            "SUM(status = 'ok'), SUM(status != 'ok'), SUM(adjusted_total), SUM(earned_nanotons), "
            "SUM(energy_wh) FROM jobs WHERE finished_at >= ? GROUP BY day ORDER BY day",
            (since,),
        )
        return [DayTotals(*row) for row in rows]

    async def today_totals(self) -> DayTotals | None:
        """Today's totals (the UTC day, as the job store groups days), or None before any job."""
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        return next((day for day in await self.totals_by_day(1) if day.day == today), None)

    async def export_json(self, limit: int = 1000) -> str:
        """Recent jobs and daily totals as JSON (for ``doctor``); contains nothing private."""
        jobs = await self.recent(limit)
        days = await self.totals_by_day(365)
        document = {
            "jobs": [asdict(job) for job in jobs],
            "totals_by_day": [asdict(day) for day in days],
        }
        return json.dumps(document, indent=1)

    # --- thread side ---------------------------------------------------------------------

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.wait_for(asyncio.to_thread(func, *args), _DB_TIMEOUT)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as exc:
            # Job history is a convenience, not money: keep the broken file, start a new one.
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            self.path.rename(aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            _log.warning("job history was unreadable (%s); moved to %s", exc, aside.name)
            self._db = self._connect()
        self._prune()

    def _connect(self) -> sqlite3.Connection:
        # Create the file private before SQLite opens it; its -wal/-shm files copy the mode.
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            _add_missing_columns(db)
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _insert(self, records: list[JobRecord]) -> None:
        with self._lock:
            db = self._connection()
            marks = ", ".join("?" * len(records[0]._row()))
            db.execute("BEGIN")
            try:
                db.executemany(
                    f"INSERT INTO jobs ({_COLUMNS}) VALUES ({marks})",  # noqa: S608 - constant
                    [record._row() for record in records],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        self._prune()

    def _prune(self) -> None:
        with self._lock:
            db = self._connection()
            cutoff = time.time() - self.max_age_days * 86400
            db.execute("DELETE FROM jobs WHERE finished_at < ?", (cutoff,))
            db.execute(
                "DELETE FROM jobs WHERE id <= (SELECT MAX(id) FROM jobs) - ?", (self.max_records,)
            )

    def _select(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._connection().execute(sql, params))

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the job store is not open")
        return self._db

    async def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await self._call(self._select, sql, params)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            if len(self._pending) < _BATCH_MAX and not self._hurry.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), _BATCH_DELAY)
            self._wake.clear()
            self._hurry.clear()
            batch, self._pending = self._pending, []
            if batch:
                try:
                    await self._call(self._insert, batch)
                except Exception as exc:  # the writer must outlive any one bad batch
                    _log.error("could not save %d job records: %s", len(batch), exc)
            if not self._pending:
                self._idle.set()
                if self._closing:
                    return


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Bring a table created by an older version up to date, keeping every row."""
    present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    missing = [(name, kind) for name, kind in _ADDED_COLUMNS if name not in present]
    if not missing:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for name, kind in missing:
            db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    _log.info("job history: added column(s) %s", ", ".join(name for name, _ in missing))
