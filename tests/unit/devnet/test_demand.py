"""The local network's simulated clients: they wait for a worker, then send at the set rate."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from app.devnet.demand import PROMPTS, DemandGenerator
from tests.polling import eventually


class FakeClientApi:
    """A loopback OpenAI endpoint that records what it receives and answers 200 (or 500)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        self.fail = False
        self.hang = asyncio.Event()  # set: requests wait until released
        self.release = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        self.runner = web.AppRunner(app)
        self.url = ""

    async def _complete(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        if self.hang.is_set():
            await self.release.wait()
        if self.fail:
            return web.Response(status=500)
        return web.json_response({"choices": []})

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture
async def api() -> AsyncIterator[FakeClientApi]:
    server = FakeClientApi()
    await server.start()
    yield server
    server.release.set()
    await server.runner.cleanup()


async def test_sends_nothing_without_a_worker(api: FakeClientApi) -> None:
    demand = DemandGenerator(lambda: api.url, lambda: [], rate_per_minute=6000)
    await demand.start()
    await asyncio.sleep(0.2)
    await demand.aclose()
    assert api.bodies == []
    assert demand.status.value.waiting_for_worker
    assert not await demand.send_one()


async def test_sends_at_the_rate_once_a_worker_serves(api: FakeClientApi) -> None:
    demand = DemandGenerator(
        lambda: api.url, lambda: ["m/one"], rate_per_minute=60_000, rng=random.Random(1)
    )
    await demand.start()
    await eventually(lambda: demand.status.value.succeeded >= 5)
    await demand.aclose()
    status = demand.status.value
    assert not status.waiting_for_worker
    assert status.sent >= 5
    assert status.failed == 0
    body = api.bodies[0]
    assert body["model"] == "m/one"
    messages = body["messages"]
    assert isinstance(messages, list)
    assert messages[0]["content"] in PROMPTS


async def test_failures_are_counted_not_raised(api: FakeClientApi) -> None:
    api.fail = True
    demand = DemandGenerator(lambda: api.url, lambda: ["m"], rate_per_minute=0)
    await demand.start()
    assert not await demand.send_one()
    status = demand.status.value
    assert (status.sent, status.failed, status.in_flight) == (1, 1, 0)
    assert status.last_error == "HTTP 500"
    demand.set_rate(-5)
    assert demand.status.value.rate_per_minute == 0
    await demand.aclose()
    await demand.aclose()


async def test_unreachable_client_api_is_a_counted_failure() -> None:
    demand = DemandGenerator(lambda: "http://127.0.0.1:9", lambda: ["m"], rate_per_minute=0)
    await demand.start()
    assert not await demand.send_one()
    assert demand.status.value.failed == 1
    await demand.aclose()


async def test_stopping_mid_request_leaves_nothing_in_flight(api: FakeClientApi) -> None:
    api.hang.set()
    demand = DemandGenerator(lambda: api.url, lambda: ["m"], rate_per_minute=60_000)
    await demand.start()
    await eventually(lambda: demand.status.value.in_flight > 0)
    await demand.aclose()
    assert demand.status.value.in_flight == 0
    assert demand.status.value.failed == 0
