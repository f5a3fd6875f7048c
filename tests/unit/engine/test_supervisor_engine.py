"""The supervised real engine: ``python -m app.engine.server`` (llama.cpp) with bundled SmolLM2."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.engine.catalog import bundled_model_path, load_catalog
from app.engine.endpoint import BackendEndpoint
from app.engine.sandbox import SandboxLevel, SandboxReport, detect_sandbox
from app.engine.sizing import HardwareBudget, plan_launch
from app.engine.supervisor import EngineSupervisor

pytestmark = [pytest.mark.engine, pytest.mark.slow]

MODEL = load_catalog().default
# A prompt nobody would log by accident: it must appear in no log file.
PROMPT = "Repeat after me: zebra-pineapple-7731."


@pytest.fixture
async def engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[EngineSupervisor, BackendEndpoint]]:
    report: SandboxReport = request.param
    launch = plan_launch(
        MODEL,
        bundled_model_path(MODEL),
        HardwareBudget.cpu_only(),
        gpu_index=None,
        context_override=1024,
    )
    supervisor = EngineSupervisor(
        launch, run_dir=tmp_path / "run", log_dir=tmp_path / "logs", sandbox=report
    )
    await supervisor.start()
    try:
        yield supervisor, await supervisor.wait_ready()
    finally:
        await supervisor.aclose()


async def complete(endpoint: BackendEndpoint, key: str | None) -> tuple[int, Any]:
    connector = (
        aiohttp.UnixConnector(path=str(endpoint.unix_socket)) if endpoint.unix_socket else None
    )
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": MODEL.name, "max_tokens": 8, "messages": [{"role": "user", "content": PROMPT}]}
    url = f"{endpoint.base_url}/v1/chat/completions"
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(url, json=body, headers=headers) as response,
    ):
        return response.status, await response.json()


def _strong() -> SandboxReport:
    if not sys.platform.startswith("linux") or shutil.which("bwrap") is None:
        return SandboxReport(SandboxLevel.BASIC, "no bwrap")
    return detect_sandbox()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
@pytest.mark.parametrize("engine", [_strong()], indirect=True, ids=["strong"])
async def test_sandboxed_engine_serves_a_chat_completion(
    engine: tuple[EngineSupervisor, BackendEndpoint], tmp_path: Path
) -> None:
    supervisor, endpoint = engine
    assert supervisor.status.value.sandbox is SandboxLevel.STRONG
    assert endpoint.unix_socket is not None
    status, body = await complete(endpoint, None)
    assert status == 200
    assert body["model"] == MODEL.name
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert 0 < body["usage"]["completion_tokens"] <= 8
    await supervisor.aclose()
    for log in (tmp_path / "logs").iterdir():
        assert "zebra-pineapple" not in log.read_text()


@pytest.mark.parametrize(
    "engine", [SandboxReport(SandboxLevel.BASIC, "test")], indirect=True, ids=["basic"]
)
async def test_basic_level_engine_refuses_requests_without_the_key(
    engine: tuple[EngineSupervisor, BackendEndpoint],
) -> None:
    _, endpoint = engine
    assert endpoint.base_url.startswith("http://127.0.0.1:")
    status, _ = await complete(endpoint, None)
    assert status == 401
    status, _ = await complete(endpoint, "wrong-key-wrong-key-wrong-key")
    assert status == 401
    status, body = await complete(endpoint, endpoint.api_key)
    assert status == 200
    assert body["usage"]["completion_tokens"] > 0
