"""The devnet test-mode proxy: its handshake checks, routing, answer relay and billing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.devnet.test_proxy import NoWorkerAvailableError, TestProxy
from app.devnet.worker_link import (
    AnswerChunk,
    AnswerEnd,
    AnswerFailed,
    AnswerHead,
    RunningQuery,
)
from app.network.connection import RemoteQueryError
from app.network.tl import TLObject, encode
from app.network.vouchers import verify_voucher
from tests.unit.devnet.fake_worker import (
    OWNER,
    FakeWorker,
    final_info,
    http_response,
    next_packet,
    worker_params,
)
from tests.unit.network.session_fixtures import wait_for


@pytest.fixture
async def proxy() -> AsyncIterator[TestProxy]:
    p = TestProxy()
    await p.start()
    yield p
    await p.aclose()


def _request() -> bytes:
    return encode(
        TLObject(
            "http.request",
            {
                "method": "POST",
                "url": "/v1/chat/completions",
                "http_version": "HTTP/1.1",
                "headers": [],
                "payload": b"{}",
            },
        )
    )


async def test_handshake_answer_and_payment_status(proxy: TestProxy) -> None:
    worker = FakeWorker()
    answer = await worker.handshake(proxy)
    params = answer["params"]
    assert (params["flags"], params["is_test"], params["proto_version"]) == (3, True, 2)
    assert params["proxy_public_key"] == proxy.public_key
    assert answer["worker_sc_address"] == proxy.worker_sc_address(OWNER)
    status = await worker.query(TLObject("worker.updatePaymentStatus", {}))
    voucher = verify_voucher(
        status["signed_payment"]["data"],
        proxy_public_key=proxy.public_key,
        worker_sc_address=answer["worker_sc_address"],
    )
    assert (voucher.tokens, status["db_tokens"], status["max_tokens"]) == (0, 0, 0)
    await worker.conn.aclose()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (
            {
                "flags": 0,
                "is_test": None,
                "proxy_cnt": None,
                "max_active_requests": None,
                "min_proto_version": None,
                "max_proto_version": None,
            },
            "too old worker",
        ),
        ({"is_test": False}, "is_test mismatch"),
        ({"model": ""}, "empty model"),
        ({"coefficient": 10**9}, "bad coefficient"),
        ({"max_active_requests": 0}, "bad capacity"),
        ({"proxy_cnt": 0}, "bad capacity"),
        ({"min_proto_version": 3, "max_proto_version": 4}, "no common protocol version"),
    ],
)
async def test_bad_worker_params_are_refused(
    proxy: TestProxy, params: dict[str, Any], reason: str
) -> None:
    worker = FakeWorker()
    conn = await worker.connect(proxy)
    with pytest.raises(RemoteQueryError, match=reason):
        await worker.query(TLObject("worker.connectToProxy", {"params": worker_params(**params)}))
    assert reason in await conn.wait_closed() or conn.is_closed


async def test_out_of_order_and_inflated_balances_are_refused(proxy: TestProxy) -> None:
    worker = FakeWorker()
    await worker.connect(proxy)
    with pytest.raises(RemoteQueryError, match="out of order"):
        await worker.query(TLObject("worker.updatePaymentStatus", {}))

    worker = FakeWorker()
    await worker.connect(proxy)
    await worker.query(TLObject("worker.connectToProxy", {"params": worker_params()}))
    with pytest.raises(RemoteQueryError, match="more tokens than this proxy knows"):
        await worker.query(
            TLObject(
                "worker.compareBalanceWithProxy",
                {"tokens_committed_to_blockchain": 5, "tokens_committed_to_db": 0, "max_tokens": 5},
            )
        )


async def test_routing_prefers_the_least_loaded_and_respects_capacity(proxy: TestProxy) -> None:
    big, small, off = FakeWorker(), FakeWorker(), FakeWorker()
    await big.handshake(proxy)
    await small.handshake(proxy, max_active_requests=1)
    await off.handshake(proxy, disabled=True)
    assert proxy.models() == ["Qwen/Qwen3-8B"]
    queries = [
        proxy.run_query(model="Qwen/Qwen3-8B", request=_request(), timeout=10) for _ in range(3)
    ]
    enabled = {link for link in proxy.links if link.enabled}
    assert len(enabled) == 2
    assert {queries[0].link, queries[1].link} == enabled  # an idle link beats a busy one
    assert queries[2].link.capacity == 2  # only the big worker has a slot left
    with pytest.raises(NoWorkerAvailableError):
        proxy.run_query(model="Qwen/Qwen3-8B", request=_request(), timeout=10)
    with pytest.raises(NoWorkerAvailableError):
        proxy.run_query(model="other-model", request=_request(), timeout=10)
    queries[0].abandon()
    again = proxy.run_query(model="Qwen/Qwen3-8B", request=_request(), timeout=10)
    assert again.link is queries[0].link


async def _routed(proxy: TestProxy, worker: FakeWorker) -> tuple[RunningQuery, bytes]:
    query = proxy.run_query(model="Qwen/Qwen3-8B", request=_request(), timeout=10)
    run = await next_packet(worker, "proxy.runQueryEx")
    assert (run["coefficient"], run["flags"], run["query"]) == (1500, 1, _request())
    assert run["request_id"] == query.request_id
    return query, run["request_id"]


async def test_answers_are_relayed_and_billed(proxy: TestProxy) -> None:
    worker = FakeWorker()
    answer = await worker.handshake(proxy)
    query, rid = await _routed(proxy, worker)
    worker.send("proxy.queryAnswerEx", request_id=rid, flags=0, answer=http_response())
    worker.send("proxy.queryAnswerPartEx", request_id=rid, flags=0, answer=b"ab")
    worker.send(
        "proxy.queryAnswerPartEx", request_id=rid, flags=1, answer=b"c", final_info=final_info(42)
    )
    events = [e async for e in query.events()]
    assert events == [
        AnswerHead("HTTP/1.1", 200, "OK", ()),
        AnswerChunk(b"ab"),
        AnswerChunk(b"c"),
        AnswerEnd(42),
    ]
    payment = await next_packet(worker, "proxy.workerRequestPayment")
    assert (payment["request_id"], payment["request_tokens"], payment["max_tokens"]) == (
        rid,
        42,
        42,
    )
    voucher = verify_voucher(
        payment["signed_payment"]["data"],
        proxy_public_key=proxy.public_key,
        worker_sc_address=answer["worker_sc_address"],
    )
    # Vouchers are for the anchored amount, which the periodic commits have not reached yet.
    assert voucher.tokens == proxy.tally(OWNER).committed_tokens == 0

    query, rid = await _routed(proxy, worker)
    worker.send(
        "proxy.queryAnswerErrorEx",
        request_id=rid,
        error_code=621,
        error="bad",
        flags=1,
        final_info=final_info(0),
    )
    assert [e async for e in query.events()] == [AnswerFailed(621, "bad")]
    assert (await next_packet(worker, "proxy.workerRequestPayment"))["request_tokens"] == 0
    assert proxy.tally(OWNER).requests == 2


async def test_out_of_order_parts_and_a_vanishing_worker_fail_the_request(proxy: TestProxy) -> None:
    worker = FakeWorker()
    await worker.handshake(proxy)
    query, rid = await _routed(proxy, worker)
    worker.send("proxy.queryAnswerPartEx", request_id=rid, flags=0, answer=b"early")
    assert [e async for e in query.events()] == [AnswerFailed(502, "out of order answer parts")]

    query, rid = await _routed(proxy, worker)
    worker.send("proxy.queryAnswerEx", request_id=rid, flags=0, answer=http_response())
    await worker.conn.aclose()  # type: ignore[union-attr]
    events = [e async for e in query.events()]
    assert isinstance(events[-1], AnswerFailed)
    assert events[-1].message.startswith("worker disconnected")
    assert proxy.links == []


async def test_coefficient_and_enable_packets_update_the_link(proxy: TestProxy) -> None:
    worker = FakeWorker()
    await worker.handshake(proxy, disabled=True)
    (link,) = proxy.links
    assert not link.enabled
    worker.send("worker.enabledDisabled", disabled=0)
    worker.send("worker.newCoefficient", new_coefficient=2500)
    await wait_for(lambda: link.enabled and link.coefficient == 2500, "updated")
    worker.send("worker.newCoefficient", new_coefficient=-1)
    assert worker.conn is not None
    assert await worker.conn.wait_closed() == "peer closed the connection"
    assert link.conn is not None
    assert link.conn.close_reason == "negative coefficient"
