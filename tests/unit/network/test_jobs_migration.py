"""A job history written before jobs had an energy column opens, keeps its rows, and gains it."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from pathlib import Path

from app.network.jobs import JobStore
from tests.unit.network.test_jobs import record

# The schema as the first release created it (no energy_wh), copied here on purpose: the test
# must keep describing the old file even after the current schema moves on.
_OLD_SCHEMA = """
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
    finished_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_finished_at ON jobs(finished_at);
"""


_OLD_INSERT = "INSERT INTO jobs VALUES (NULL" + ", ?" * 21 + ")"


def _old_database(path: Path, rows: int) -> None:
    """A ``jobs.sqlite3`` as the old version left it: WAL mode, ``rows`` answered jobs."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(_OLD_SCHEMA)
    now = time.time()
    for n in range(rows):
        values = (
            f"{n:064x}",
            "proxy-a",
            "Qwen/Qwen3-8B",
            "ok",
            200,
            0,
            "",
            1500,
            34,
            11,
            100,
            10,
            34,
            16,
            135,
            15,
            200,
            200,
            1000,
            now - 10 + n,
            now - 9 + n,
        )
        db.execute(_OLD_INSERT, values)
    db.commit()
    db.close()


def _listing(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if not p.name.endswith(("-wal", "-shm"))]


def _columns(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    names = [row[1] for row in db.execute("PRAGMA table_info(jobs)")]
    db.close()
    return names


async def test_an_old_database_keeps_its_rows_and_gains_the_energy_column(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    _old_database(path, rows=3)
    assert "energy_wh" not in _columns(path)

    store = JobStore(path)
    await store.start()
    old = await store.recent()
    assert [job.request_hash for job in old] == [f"{n:064x}" for n in (2, 1, 0)]
    assert all(job.energy_wh is None for job in old)
    assert old[0].tokens.total_tokens_used == 200
    store.add(dataclasses.replace(record(9), energy_wh=1.5))
    await store.flush()
    (today,) = await store.totals_by_day(1)
    await store.aclose()

    assert (today.jobs, today.earned_nanotons) == (4, 800)
    assert today.energy_wh == 1.5  # the old rows are unmeasured, not zero
    assert _columns(path)[-1] == "energy_wh"
    assert sorted(p.name for p in _listing(tmp_path)) == ["jobs.sqlite3"]  # not moved aside


async def test_a_migrated_database_opens_again_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    _old_database(path, rows=2)
    for energy in (0.25, None):
        store = JobStore(path)
        await store.start()
        store.add(dataclasses.replace(record(5), energy_wh=energy))
        await store.aclose()
    store = JobStore(path)
    await store.start()
    jobs = await store.recent()
    document = json.loads(await store.export_json())
    await store.aclose()
    assert [job.energy_wh for job in jobs] == [None, 0.25, None, None]
    assert _columns(path).count("energy_wh") == 1
    assert document["totals_by_day"][-1]["energy_wh"] == 0.25


async def test_a_new_database_has_the_energy_column(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    await store.start()
    store.add(dataclasses.replace(record(1), energy_wh=3.0))
    await store.flush()
    (job,) = await store.recent()
    await store.aclose()
    assert job.energy_wh == 3.0
    assert "energy_wh" in _columns(tmp_path / "jobs.sqlite3")
