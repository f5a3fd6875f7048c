"""Fixtures several network tests share: the mock backend on loopback and a job store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.devnet.mock_backend import MockBackend, MockBackendConfig
from app.network.jobs import JobStore


@pytest.fixture
async def mock() -> AsyncIterator[MockBackend]:
    """A mock OpenAI backend answering with 5 chunks of 16 bytes."""
    backend = MockBackend(MockBackendConfig(chunks=5, chunk_bytes=16))
    await backend.start()
    yield backend
    await backend.aclose()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[JobStore]:
    """A started job store in the test's temporary folder."""
    jobs = JobStore(tmp_path / "jobs.sqlite3")
    await jobs.start()
    yield jobs
    await jobs.aclose()
