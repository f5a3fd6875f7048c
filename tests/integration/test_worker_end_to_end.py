"""Client → client API → test-mode proxy → CocoonWorker → RequestServer → mock backend, on loopback.

Streamed (NDJSON, SSE) and non-streamed answers arrive intact, and the proxy's per-worker tallies
equal what the worker billed in its final infos.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from app.devnet.client_api import ClientApi
from app.devnet.mock_backend import MockBackend, MockBackendConfig
from app.devnet.test_proxy import TestProxy
from app.network.request_server import RequestServer
from app.network.worker import CocoonWorker, WorkerTimers
from app.network.worker_config import WorkerConfig
from tests.unit.network.session_fixtures import TRACE_MODEL, TRACE_OWNER, wait_for

MODEL = "Qwen/Qwen3-8B"
TIMERS = WorkerTimers(tick=(0.01, 0.02), redial_after=0.05)


@dataclass
class Stack:
    backend: MockBackend
    server: RequestServer
    proxy: TestProxy
    api: ClientApi
    worker: CocoonWorker

    async def post(self, body: dict[str, object]) -> tuple[int, bytes, int]:
        """POST on a fresh connection; returns status, body and how many reads it took."""
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            url = f"{self.api.url}/v1/chat/completions"
            async with session.post(url, json=body) as response:
                data, reads = b"", 0
                async for chunk in response.content.iter_any():
                    data += chunk
                    reads += 1
                return response.status, data, reads


async def _stack(mode: str) -> AsyncIterator[Stack]:
    backend = MockBackend(MockBackendConfig(mode=mode, chunks=50, delay_ms=1))
    await backend.start()
    server = RequestServer(backend.endpoint, model=TRACE_MODEL, max_active_requests=8)
    await server.start()
    proxy = TestProxy(db_commit_every=0.05, chain_commit_every=0.1)
    await proxy.start()
    api = ClientApi(proxy)
    await api.start()
    config = WorkerConfig.from_strings(
        proxies=[f"127.0.0.1:{proxy.port}"],
        model=TRACE_MODEL,
        owner_address=TRACE_OWNER,
        coefficient=1500,
        max_active_requests=8,
    )
    worker = CocoonWorker(config, server=server, timers=TIMERS)
    stack = Stack(backend, server, proxy, api, worker)
    try:
        yield stack
    finally:
        await worker.aclose()
        await api.aclose()
        await proxy.aclose()
        await server.aclose()
        await backend.aclose()


@pytest.fixture(params=["json", "ndjson", "sse"])
async def stack(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    async for value in _stack(request.param):
        yield value


def _chat(stream: bool) -> dict[str, object]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": stream}


async def test_requests_are_served_and_billed_exactly(stack: Stack) -> None:
    status, body, _ = await stack.post(_chat(stream=False))
    assert status == 503  # no worker connected yet: a clear refusal, nothing lost
    assert b"no worker is available" in body

    await stack.worker.start()
    await wait_for(lambda: stack.worker.status.value.connected_proxies == 1, "worker ready")
    mode = stack.backend.config.mode
    for _ in range(3):
        status, body, reads = await stack.post(_chat(stream=mode != "json"))
        assert status == 200
        if mode == "json":
            answer = json.loads(body)
            assert answer["choices"][0]["message"]["content"] == "Hello from the mock."
            assert answer["usage"]["total_cost"] == 400
        elif mode == "ndjson":
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            assert len(lines) == 51
            assert lines[-1]["usage"]["total_cost"] == 400
        else:
            assert body.count(b"data: ") == 52
            assert body.rstrip().endswith(b"data: [DONE]")
        assert reads >= 1

    await wait_for(lambda: stack.worker.status.value.served == 3, "served")
    tally = stack.proxy.tally(TRACE_OWNER)
    status_now = stack.worker.status.value
    assert tally.requests == 3
    assert (
        tally.max_tokens == status_now.tokens == stack.server.status.value.tokens.total_tokens_used
    )
    assert tally.max_tokens == 3 * 200
    balance = stack.worker.payments.for_proxy(stack.proxy.sc_address)
    assert balance is not None
    await wait_for(lambda: balance_of(stack) == tally.committed_tokens, "voucher caught up")


def balance_of(stack: Stack) -> int:
    balance = stack.worker.payments.for_proxy(stack.proxy.sc_address)
    return balance.max_tokens if balance is not None else -1


@pytest.fixture
async def ndjson_stack() -> AsyncIterator[Stack]:
    async for value in _stack("ndjson"):
        yield value


async def test_bad_client_requests_get_clear_errors(ndjson_stack: Stack) -> None:
    stack = ndjson_stack
    await stack.worker.start()
    await wait_for(lambda: stack.worker.status.value.connected_proxies == 1, "worker ready")
    status, body, _ = await stack.post({**_chat(stream=True), "foo_bar": 1})
    assert status == 502
    assert b"621" in body
    assert b"unknown option" in body
    status, body, _ = await stack.post({"messages": []})
    assert status == 400
    status, body, _ = await stack.post({**_chat(stream=True), "timeout": "soon"})
    assert status == 400
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(f"{stack.api.url}/v1/chat/completions", data=b"{nope") as response:
            assert response.status == 400
        async with session.get(f"{stack.api.url}/v1/models") as response:
            assert (await response.json())["data"][0]["id"] == MODEL
    # Billing is untouched by refused requests.
    await wait_for(lambda: stack.worker.status.value.failed == 1, "failure counted")
    assert stack.proxy.tally(TRACE_OWNER).max_tokens == 0
