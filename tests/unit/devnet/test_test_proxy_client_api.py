"""The devnet client API in front of the test proxy, with a hand-driven worker: relay and errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from app.devnet.client_api import ClientApi
from app.devnet.test_proxy import TestProxy
from app.devnet.worker_link import WorkerLink
from app.network.tl import decode
from tests.unit.devnet.fake_worker import FakeWorker, final_info, http_response, next_packet
from tests.unit.network.session_fixtures import wait_for

BODY = {
    "model": "Qwen/Qwen3-8B",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
    "max_coefficient": 4000,
    "request_guid": "abc",
    "max_tokens": 5,
    "max_completion_tokens": 6,
}


class _Rig:
    def __init__(self, api: ClientApi, proxy: TestProxy, worker: FakeWorker) -> None:
        self.api, self.proxy, self.worker = api, proxy, worker
        self.session = aiohttp.ClientSession()

    def post(self) -> asyncio.Task[aiohttp.ClientResponse]:
        """Start a POST; its response head arrives only once the worker answers."""
        url = f"{self.api.url}/v1/chat/completions"
        return asyncio.create_task(self.session.post(url, json=BODY))

    def answer(self, name: str, **fields: object) -> None:
        self.worker.send(name, **fields)

    @property
    def link(self) -> WorkerLink:
        (link,) = self.proxy.links
        return link


@pytest.fixture
async def rig() -> AsyncIterator[_Rig]:
    proxy = TestProxy()
    await proxy.start()
    api = ClientApi(proxy)
    await api.start()
    worker = FakeWorker()
    await worker.handshake(proxy)
    value = _Rig(api, proxy, worker)
    yield value
    await value.session.close()
    await api.aclose()
    await proxy.aclose()


def _head(rid: bytes) -> dict[str, object]:
    return {"request_id": rid, "flags": 0, "answer": http_response()}


async def test_answer_streams_through_as_it_arrives(rig: _Rig) -> None:
    pending = rig.post()
    run = await next_packet(rig.worker, "proxy.runQueryEx")
    request = decode(run["query"])
    # The client's private fields are stripped; max_tokens yields to max_completion_tokens.
    assert request["payload"] == (
        b'{"max_completion_tokens":6,"messages":[{"content":"hi","role":"user"}],'
        b'"model":"Qwen/Qwen3-8B","stream":true}'
    )
    assert [h["name"].lower() for h in request["headers"]].count("content-length") == 1
    rid = run["request_id"]
    rig.answer("proxy.queryAnswerEx", **_head(rid))
    rig.answer("proxy.queryAnswerPartEx", request_id=rid, flags=0, answer=b"first\n")
    async with await pending as response:
        assert response.status == 200
        assert await response.content.readline() == b"first\n"  # before the worker finished
        rig.answer(
            "proxy.queryAnswerPartEx",
            request_id=rid,
            flags=1,
            answer=b"last\n",
            final_info=final_info(9),
        )
        assert await response.content.read() == b"last\n"
    assert rig.proxy.tally(rig.link.owner).max_tokens == 9


async def test_error_after_the_head_cuts_the_connection(rig: _Rig) -> None:
    pending = rig.post()
    rid = (await next_packet(rig.worker, "proxy.runQueryEx"))["request_id"]
    rig.answer("proxy.queryAnswerEx", **_head(rid))
    rig.answer("proxy.queryAnswerPartEx", request_id=rid, flags=0, answer=b"partial")
    async with await pending as response:
        assert response.status == 200
        rig.answer(
            "proxy.queryAnswerErrorEx",
            request_id=rid,
            error_code=652,
            error="worker: timeout",
            flags=1,
            final_info=final_info(0),
        )
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_error_before_the_head_is_a_502(rig: _Rig) -> None:
    pending = rig.post()
    rid = (await next_packet(rig.worker, "proxy.runQueryEx"))["request_id"]
    rig.answer(
        "proxy.queryAnswerErrorEx",
        request_id=rid,
        error_code=602,
        error="too many active queries",
        flags=1,
        final_info=final_info(0),
    )
    async with await pending as response:
        assert response.status == 502
        assert "too many active queries" in (await response.json())["error"]["message"]


async def test_a_client_that_goes_away_frees_the_slot(rig: _Rig) -> None:
    pending = rig.post()
    await next_packet(rig.worker, "proxy.runQueryEx")
    assert len(rig.link.running) == 1
    pending.cancel()  # the client gives up before any answer
    await asyncio.gather(pending, return_exceptions=True)
    link = rig.link
    await wait_for(lambda: not link.running, "request abandoned")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "request body is not JSON"),
        (b"\xff\xfe", 400, "request body is not JSON"),
        (b"[1, 2]", 400, "a JSON object with a 'model' string"),
        (b'{"model": 7}', 400, "a JSON object with a 'model' string"),
        (b'{"model": "Qwen/Qwen3-8B", "timeout": 0}', 400, "'timeout' must be a positive"),
        (b'{"model": "Qwen/Qwen3-8B", "timeout": true}', 400, "'timeout' must be a positive"),
        (b'{"model": "Qwen/Qwen3-8B", "timeout": "5"}', 400, "'timeout' must be a positive"),
        (b'{"model": "other/Model"}', 503, "no worker is available for model 'other/Model'"),
    ],
)
async def test_bad_client_requests_are_refused_before_any_worker(
    rig: _Rig, body: bytes, status: int, message: str
) -> None:
    url = f"{rig.api.url}/v1/chat/completions"
    async with rig.session.post(url, data=body) as response:
        assert response.status == status
        error = (await response.json())["error"]
        assert message in error["message"]
        assert error["code"] == status
    assert not rig.link.running
