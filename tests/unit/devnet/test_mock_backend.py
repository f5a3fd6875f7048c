"""The mock OpenAI backend over real loopback HTTP: each answer mode and the query overrides."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from app.devnet.mock_backend import DEFAULT_USAGE, MockBackend, MockBackendConfig


@pytest.fixture
async def backend() -> AsyncIterator[MockBackend]:
    mock = MockBackend()
    await mock.start()
    yield mock
    await mock.aclose()


async def post(backend: MockBackend, query: str = "") -> tuple[int, str, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{backend.url}/v1/chat/completions{query}", json={"model": "m"}) as response,
    ):
        return response.status, response.headers.get("Content-Type", ""), await response.read()


async def test_models_lists_the_configured_model(backend: MockBackend) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{backend.url}/v1/models") as response,
    ):
        document = await response.json()
    assert document["data"][0]["id"] == "Qwen/Qwen3-8B"


async def test_default_stream_is_like_the_reference_benchmark(backend: MockBackend) -> None:
    status, content_type, body = await post(backend)
    lines = body.splitlines()
    assert (status, content_type) == (200, "application/json")
    assert len(lines) == 51
    assert all(len(json.loads(line)["delta"]) == 128 for line in lines[:50])
    assert json.loads(lines[-1]) == {"usage": DEFAULT_USAGE}
    assert backend.received[0].body == b'{"model": "m"}'


async def test_query_parameters_override_the_shape(backend: MockBackend) -> None:
    _, _, body = await post(backend, "?chunks=3&bytes=7&delay_ms=1")
    lines = body.splitlines()
    assert len(lines) == 4
    assert json.loads(lines[0])["delta"] == "0" * 7


async def test_sse_mode(backend: MockBackend) -> None:
    _, content_type, body = await post(backend, "?mode=sse&chunks=2")
    events = body.split(b"\n\n")
    assert content_type == "text/event-stream"
    assert events[-2:] == [b"data: [DONE]", b""]
    final = json.loads(events[-3].removeprefix(b"data: "))
    assert final["usage"] == DEFAULT_USAGE
    assert final["choices"] == []


async def test_json_mode_and_errors() -> None:
    backend = MockBackend(MockBackendConfig(mode="json"))
    await backend.start()
    status, _, body = await post(backend)
    assert json.loads(body)["usage"] == DEFAULT_USAGE
    status, _, body = await post(backend, "?mode=error500")
    assert status == 500
    status, _, body = await post(backend, "?mode=empty")
    assert (status, body) == (200, b"")
    await backend.aclose()


async def test_drop_mode_breaks_the_stream(backend: MockBackend) -> None:
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(backend, "?mode=drop")


async def test_hanging_backend_lets_go_on_close() -> None:
    backend = MockBackend(MockBackendConfig(mode="hang"))
    await backend.start()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(TimeoutError):
            await session.post(
                f"{backend.url}/v1/chat/completions", timeout=aiohttp.ClientTimeout(total=0.1)
            )
    await backend.aclose()  # returns although a handler was waiting
