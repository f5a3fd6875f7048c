"""Job records in real SQLite: storing, queries, retention, export, and no prompt ever on disk."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import stat
import time
from pathlib import Path
from typing import cast

import pytest

from app.core.paths import AppPaths
from app.devnet.mock_backend import MockBackend, MockBackendConfig
from app.network.answer import HttpRequest, QueryContext, TokensUsed
from app.network.jobs import JobRecord, JobStore, hash_request_id
from app.network.request_server import RequestServer
from tests.unit.network.test_request_server import RecordingSink

DAY = 86400.0


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def record(n: int = 1, *, status: str = "ok", finished_at: float | None = None) -> JobRecord:
    end = time.time() if finished_at is None else finished_at
    return JobRecord(
        request_hash=hash_request_id(bytes([n % 256]) * 32),
        proxy="proxy-a",
        model="Qwen/Qwen3-8B",
        status=status,
        http_status=200,
        error_code=0,
        error_message="",
        coefficient=1500,
        prompt_tokens=34,
        cached_tokens=11,
        completion_tokens=100,
        reasoning_tokens=10,
        tokens=TokensUsed(34, 16, 135, 15, 200),
        earned_nanotons=200,
        answer_bytes=1000,
        started_at=end - 1.0,
        finished_at=end,
    )


async def test_records_round_trip_newest_first(store: JobStore) -> None:
    records = [record(n) for n in range(5)]
    for item in records:
        store.add(item)
    await store.flush()
    assert await store.recent(3) == records[:1:-1]


async def test_request_ids_are_stored_hashed(store: JobStore) -> None:
    request_id = b"\x42" * 32
    store.add(record())
    await store.flush()
    assert hash_request_id(request_id) != request_id.hex()
    db = sqlite3.connect(store.path)
    hashes = [row[0] for row in db.execute("SELECT request_hash FROM jobs")]
    db.close()
    assert hashes == [hash_request_id(b"\x01" * 32)]
    assert len(hashes[0]) == 64


async def test_totals_per_day(store: JobStore) -> None:
    now = time.time()
    store.add(record(1, finished_at=now))
    store.add(record(2, finished_at=now, status="failed"))
    store.add(record(3, finished_at=now - 2 * DAY))
    await store.flush()
    days = await store.totals_by_day(7)
    assert len(days) == 2
    today = days[-1]
    assert (today.jobs, today.succeeded, today.failed) == (2, 1, 1)
    assert today.adjusted_tokens == 400
    assert today.earned_nanotons == 400


async def test_today_is_the_utc_day_not_the_oldest_row(store: JobStore) -> None:
    assert await store.today_totals() is None
    now = time.time()
    midnight = now - now % DAY  # today's UTC midnight
    store.add(record(1, finished_at=midnight - 60))  # yesterday, within the last 24 hours
    store.add(record(2, finished_at=max(midnight, now - 1)))
    store.add(record(3, finished_at=max(midnight, now - 1)))
    await store.flush()
    today = await store.today_totals()
    assert today is not None
    assert today.jobs == 2


async def test_retention_by_count(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3", max_records=10)
    await store.start()
    for n in range(25):
        store.add(record(n))
        if n % 7 == 0:
            await store.flush()
    await store.flush()
    recent = await store.recent(100)
    await store.aclose()
    assert len(recent) == 10
    assert recent[0].request_hash == record(24).request_hash


async def test_retention_by_age_applies_at_start(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path, max_age_days=30)
    await store.start()
    store.add(record(1, finished_at=time.time() - 40 * DAY))
    store.add(record(2))
    await store.flush()
    assert len(await store.recent()) == 1  # pruned right after the write
    await store.aclose()
    reopened = JobStore(path, max_age_days=30)
    await reopened.start()
    assert [r.request_hash for r in await reopened.recent()] == [record(2).request_hash]
    await reopened.aclose()


async def test_database_is_private_and_in_wal_mode(store: JobStore) -> None:
    store.add(record())
    await store.flush()
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


async def test_export_is_json_with_jobs_and_days(store: JobStore) -> None:
    store.add(record())
    await store.flush()
    document = json.loads(await store.export_json())
    assert document["jobs"][0]["tokens"]["total_tokens_used"] == 200
    assert document["totals_by_day"][0]["jobs"] == 1


async def test_aclose_flushes_and_is_idempotent(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    await store.start()
    store.add(record(7))
    await store.aclose()
    await store.aclose()
    reopened = JobStore(tmp_path / "jobs.sqlite3")
    await reopened.start()
    assert len(await reopened.recent()) == 1
    await reopened.aclose()


@pytest.mark.allow_log_warnings
async def test_adding_after_close_is_reported_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    await store.start()
    await store.aclose()
    store.add(record())
    assert "a job record was not saved" in caplog.text


async def test_prompt_and_answer_never_reach_the_disk(tmp_path: Path) -> None:
    """Serve real requests whose prompt and answer carry unique markers; scan every file."""
    paths = AppPaths(tmp_path / "data").ensure()
    prompt_marker = "PROMPT-MARKER-5f0e1c2b"
    answer_marker = "ANSWER-MARKER-9a7d3e61"
    backend = MockBackend(MockBackendConfig(mode="json", model="Qwen/Qwen3-8B"))
    await backend.start()
    store = JobStore(paths.jobs_db)
    await store.start()
    server = RequestServer(backend.endpoint, model="Qwen/Qwen3-8B", jobs=store)
    payload = {
        "model": "Qwen/Qwen3-8B",
        "messages": [{"role": "user", "content": prompt_marker}],
        "stream": True,
    }
    request = HttpRequest(
        "POST", "/v1/chat/completions", "HTTP/1.1", (), json.dumps(payload).encode()
    )
    for mode in ("json", "sse", "ndjson", "error500"):
        backend.config = MockBackendConfig(mode=mode, model=answer_marker, chunks=3)
        sink = RecordingSink()
        await server.serve(QueryContext(b"\x07" * 32, 1000, 5.0), request, sink)
        assert answer_marker.encode() in sink.body or mode in ("ndjson", "error500")
    bad = HttpRequest("POST", "/v1/chat/completions", "HTTP/1.1", (), b"{" + prompt_marker.encode())
    await server.serve(QueryContext(b"\x08" * 32, 1000, 5.0), bad, RecordingSink())
    await store.flush()
    assert len(await store.recent()) == 5
    files = _files(paths.data_dir)
    assert any(p.name.endswith("-wal") for p in files)  # the WAL is scanned while it exists
    for path in files:
        content = path.read_bytes()
        assert prompt_marker.encode() not in content, path
        assert answer_marker.encode() not in content, path
        assert b"\x07" * 32 not in content, path  # nor the raw request id
    await server.aclose()
    await store.aclose()
    await backend.aclose()
    for path in _files(paths.data_dir):
        assert prompt_marker.encode() not in path.read_bytes()


@pytest.mark.allow_log_warnings
async def test_corrupt_database_is_moved_aside_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    path.write_bytes(b"this is not a database at all" * 100)
    store = JobStore(path)
    await store.start()
    store.add(record())
    await store.flush()
    assert len(await store.recent()) == 1
    await store.aclose()
    aside = [p for p in _files(tmp_path) if ".corrupt-" in p.name]
    assert len(aside) == 1
    assert aside[0].read_bytes().startswith(b"this is not a database")


@pytest.mark.allow_log_warnings
async def test_a_failing_write_is_logged_and_the_writer_goes_on(store: JobStore) -> None:
    store.add(dataclasses.replace(record(), model=cast(str, object())))  # not storable
    await store.flush()
    store.add(record(2))
    await store.flush()
    assert [r.request_hash for r in await store.recent()] == [record(2).request_hash]
