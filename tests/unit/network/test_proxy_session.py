"""The worker's proxy session against a scripted proxy replaying the captured reference frames."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from nacl.signing import SigningKey

from app.network.answer_sink import RequestLedger
from app.network.dialer import direct_dialer
from app.network.payment_store import ProxyAccount
from app.network.proxy_payments import PaymentBook
from app.network.proxy_session import ProxySession, SessionTimers
from app.network.request_server import RequestServer
from app.network.tl import TLObject, decode, encode
from app.network.vouchers import sign_voucher
from tests.unit.network.session_fixtures import (
    NO_POLL,
    QUIET,
    ScriptedProxy,
    r2w,
    serving_backend,
    trace_config,
    w2r,
    wait_for,
)

PROXY_SC = "UQBPkxYfPKgOBMbbi9VQVO2DQz7Wg3w9K5YTsl8x1_KaeZcZ"
WORKER_SC = "UQDLYGhRHNqXquKXJazsjMBUUhXtmZ_Nom43-_sztpg80bUO"


class _Rig:
    def __init__(
        self,
        proxy: ScriptedProxy,
        server: RequestServer,
        timers: SessionTimers,
        payments: PaymentBook,
    ) -> None:
        self.proxy = proxy
        self.payments = payments
        self.ledger = RequestLedger()
        config = trace_config(proxies=[f"127.0.0.1:{proxy.port}"])
        self.session = ProxySession(
            config.proxies[0],
            config=config,
            server=server,
            payments=self.payments,
            ledger=self.ledger,
            dial=direct_dialer(timeout=5),
            timers=timers,
        )
        self.task = asyncio.create_task(self.session.run())

    def balance(self) -> ProxyAccount:
        balance = self.payments.for_proxy(PROXY_SC)
        assert balance is not None
        return balance

    async def finish(self, reason: str = "test over") -> str:
        self.session.close(reason)
        return await self.task


async def _rig(
    mode: str = "json", timers: SessionTimers = NO_POLL, *, delay_ms: int = 0, chunks: int = 5
) -> AsyncIterator[_Rig]:
    proxy = ScriptedProxy()
    await proxy.start()
    async with serving_backend(mode, delay_ms=delay_ms, chunks=chunks) as server:
        payments = PaymentBook.in_memory()
        await payments.start()
        rig = _Rig(proxy, server, timers, payments)
        try:
            yield rig
        finally:
            rig.session.close("test over")
            await rig.task
            await proxy.aclose()
            await payments.aclose()


@pytest.fixture
async def rig() -> AsyncIterator[_Rig]:
    async for value in _rig():
        yield value


@pytest.fixture
async def streaming_rig() -> AsyncIterator[_Rig]:
    async for value in _rig("ndjson", delay_ms=20, chunks=50):
        yield value


async def test_handshake_equals_the_reference_and_a_captured_query_is_answered(rig: _Rig) -> None:
    queries = await rig.proxy.replay_handshake()
    # Field for field what the reference worker sent with the same configuration.
    assert queries == [decode(w2r(i)["data"]) for i in (1, 2, 3)]
    await wait_for(lambda: rig.session.state.value.phase == "ready", "ready")
    assert rig.session.state.value.proxy_sc_address == PROXY_SC
    balance = rig.payments.for_proxy(PROXY_SC)
    assert balance is not None
    assert balance.voucher is not None
    assert (balance.voucher_tokens, balance.worker_sc) == (0, WORKER_SC)

    rig.proxy.send(r2w(5))  # the captured non-streaming proxy.runQueryEx
    head = decode((await rig.proxy.read())["data"])
    last = decode((await rig.proxy.read())["data"])
    captured_head, captured_last = decode(w2r(5)["data"]), decode(w2r(6)["data"])
    request_id = decode(r2w(5)["data"])["request_id"]
    assert (head.name, head["request_id"], head["flags"]) == (
        captured_head.name,
        request_id,
        captured_head["flags"],
    )
    response, captured_response = decode(head["answer"]), decode(captured_head["answer"])
    for key in ("http_version", "status_code", "reason", "payload"):
        assert response[key] == captured_response[key]
    names = [h["name"] for h in response["headers"]]
    assert {"X-Cocoon-Worker-Start", "X-Cocoon-Worker-End"} <= set(names)
    assert names[-1] == "Transfer-Encoding"
    assert (last.name, last["request_id"], last["flags"]) == (captured_last.name, request_id, 1)
    assert last["final_info"]["flags"] == captured_last["final_info"]["flags"] == 2
    assert last["final_info"]["tokens_used"] == captured_last["final_info"]["tokens_used"]

    rig.proxy.send(r2w(6))  # proxy.workerRequestPayment: db 0, max 200
    await wait_for(lambda: rig.balance().max_tokens == 200, "payment")
    assert (rig.ledger.served, rig.ledger.tokens, rig.ledger.active) == (1, 200, 0)
    assert await rig.finish() == "test over"


def _params(drop: tuple[str, ...] = (), **changes: object):  # type: ignore[no-untyped-def]
    def edit(answer: TLObject) -> TLObject:
        fields = {k: v for k, v in answer["params"].fields.items() if k not in drop}
        return answer.replace(params=TLObject("proxy.params", {**fields, **changes}))

    return edit


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (_params(is_test=False), "bad handshake answer: proxy runs in production mode"),
        (
            _params(("is_test", "proto_version"), flags=0),
            "bad handshake answer: proxy params flags 0",
        ),
        (_params(("proto_version",), flags=1), "bad handshake answer: proxy params flags 1"),
        (_params(proto_version=0), "outside 1..2"),
        (_params(proto_version=3), "outside 1..2"),
    ],
)
async def test_a_bad_handshake_answer_closes_with_a_reason(
    rig: _Rig, edit: object, reason: str
) -> None:
    await rig.proxy.accept()
    first = r2w(1)
    first = first.replace(data=encode(edit(decode(first["data"]))))  # type: ignore[operator]
    await rig.proxy.answer(first)
    closed = await rig.task
    assert closed.startswith("bad handshake answer")
    assert reason in closed
    assert rig.session.state.value.phase == "closed"
    assert rig.payments.for_proxy(PROXY_SC) is None
    assert rig.proxy.reader is not None
    assert await rig.proxy.reader.read() == b""


async def test_handshake_answer_of_the_wrong_type_closes(rig: _Rig) -> None:
    await rig.proxy.accept()
    await rig.proxy.answer(r2w(3))  # proxyHandshakeCompleted where connectedToProxy belongs
    assert (await rig.task).startswith("handshake failed")


async def test_a_proxy_refusal_closes(rig: _Rig) -> None:
    await rig.proxy.accept()
    query = await rig.proxy.read()
    rig.proxy.send(TLObject("tcp.queryError", {"id": query["id"], "code": 621, "message": "nope"}))
    assert await rig.task == "proxy refused the handshake: nope"


async def test_a_lower_balance_from_the_proxy_forces_a_reconnect(rig: _Rig) -> None:
    await rig.proxy.replay_handshake()
    rig.proxy.send(r2w(8))  # db 200, max 400
    rig.proxy.send(r2w(6))  # db 0, max 200: lower than what it said before
    reason = await rig.task
    assert reason.startswith("proxy reported a lower balance")
    assert rig.balance().max_tokens == 400


@pytest.mark.allow_log_warnings
async def test_a_forged_voucher_is_rejected_and_the_link_stays(rig: _Rig) -> None:
    await rig.proxy.replay_handshake()
    forged = sign_voucher(
        SigningKey.generate(),
        tokens=10**6,
        query_id=1,
        worker_sc_address=WORKER_SC,
        excesses_address=PROXY_SC,
    )
    rig.proxy.send(
        TLObject("tcp.packet", {"data": encode(TLObject("proxy.signedPayment", {"data": forged}))})
    )
    rig.proxy.send(r2w(8))
    await wait_for(lambda: rig.balance().max_tokens == 400, "payment")
    assert rig.balance().voucher_tokens == 0
    assert rig.session.is_ready


async def test_enable_disable_and_coefficient_packets(rig: _Rig) -> None:
    await rig.proxy.replay_handshake()
    await wait_for(lambda: rig.session.is_ready, "ready")
    rig.session.set_enabled(False)
    rig.session.set_enabled(False)  # no change, no packet
    rig.session.set_enabled(True)
    rig.session.set_coefficient(2000)
    sent = [decode((await rig.proxy.read())["data"]) for _ in range(3)]
    assert sent == [
        TLObject("worker.enabledDisabled", {"disabled": 1}),
        TLObject("worker.enabledDisabled", {"disabled": 0}),
        TLObject("worker.newCoefficient", {"new_coefficient": 2000}),
    ]


@pytest.fixture
async def polling_rig() -> AsyncIterator[_Rig]:
    timers = SessionTimers(payment_status_every=(0.01, 0.02), keepalive=QUIET)
    async for value in _rig(timers=timers):
        yield value


async def test_payment_status_is_polled(polling_rig: _Rig) -> None:
    rig = polling_rig
    await rig.proxy.replay_handshake()
    status = {**decode(r2w(4)["data"]).fields, "db_tokens": 5, "max_tokens": 7}
    answer = r2w(4).replace(data=encode(TLObject("worker.paymentStatus", status)))
    assert await rig.proxy.answer(answer) == decode(w2r(4)["data"])
    await wait_for(lambda: rig.balance().max_tokens == 7, "status")


async def test_a_malformed_http_request_is_answered_621(rig: _Rig) -> None:
    await rig.proxy.replay_handshake()
    run = decode(r2w(5)["data"]).replace(query=b"\x01\x02\x03\x04")
    rig.proxy.send(TLObject("tcp.packet", {"data": encode(run)}))
    error = decode((await rig.proxy.read())["data"])
    assert (error.name, error["error_code"], error["flags"]) == ("proxy.queryAnswerErrorEx", 621, 1)
    assert error["error"].startswith("worker: invalid http request")
    assert error["final_info"]["tokens_used"]["total_tokens_used"] == 0
    assert rig.session.is_ready


async def test_a_malformed_packet_closes_the_link(rig: _Rig) -> None:
    await rig.proxy.replay_handshake()
    rig.proxy.send(TLObject("tcp.packet", {"data": b"\xde\xad\xbe\xef"}))
    assert (await rig.task).startswith("malformed packet from the proxy")


@pytest.mark.allow_log_warnings  # the mock backend's server logs the cut-off client
async def test_the_proxy_vanishing_mid_stream(streaming_rig: _Rig) -> None:
    rig = streaming_rig
    await rig.proxy.replay_handshake()
    baseline = asyncio.all_tasks() - {rig.task}  # the session's own task ends as well
    rig.proxy.send(r2w(9))  # the captured streaming request
    assert decode((await rig.proxy.read())["data"]).name == "proxy.queryAnswerEx"
    assert decode((await rig.proxy.read())["data"]).name == "proxy.queryAnswerPartEx"
    assert rig.ledger.active == 1
    assert rig.proxy.writer is not None
    rig.proxy.writer.transport.abort()
    reason = await rig.task
    assert reason.startswith(("peer closed", "connection lost"))
    assert (rig.ledger.active, rig.ledger.failed) == (0, 1)
    await wait_for(lambda: asyncio.all_tasks() <= baseline, "tasks back to baseline")


class _BrokenServer:
    async def serve(self, query: object, request: object, sink: object) -> object:
        raise RuntimeError("bug in the request server")


@pytest.mark.allow_log_warnings
async def test_a_failing_request_server_answers_602_and_keeps_the_link() -> None:
    proxy = ScriptedProxy()
    await proxy.start()
    payments = PaymentBook.in_memory()
    await payments.start()
    rig = _Rig(proxy, _BrokenServer(), NO_POLL, payments)  # type: ignore[arg-type]
    try:
        await proxy.replay_handshake()
        proxy.send(r2w(5))
        error = decode((await proxy.read())["data"])
        assert (error.name, error["error_code"], error["error"]) == (
            "proxy.queryAnswerErrorEx",
            602,
            "worker: internal error",
        )
        assert rig.session.is_ready
        assert (rig.ledger.failed, rig.ledger.active) == (1, 0)
    finally:
        assert await rig.finish() == "test over"
        await proxy.aclose()
        await payments.aclose()


async def test_a_proxy_that_lost_its_records_is_not_served_and_the_numbers_are_kept(
    rig: _Rig,
) -> None:
    await rig.proxy.replay_handshake()
    rig.proxy.send(r2w(8))  # db 200, max 400
    await wait_for(lambda: rig.balance().max_tokens == 400, "payment")
    assert await rig.finish() == "test over"

    proxy = ScriptedProxy()  # the same proxy (same key and contract), after a restart
    await proxy.start()
    async with serving_backend() as server:
        again = _Rig(proxy, server, NO_POLL, payments=rig.payments)
        try:
            await proxy.accept()
            await proxy.answer(r2w(1))
            compare = await proxy.answer(r2w(2))  # it answers 0/0: it lost its database
            assert compare == TLObject(
                "worker.compareBalanceWithProxy",
                {
                    "tokens_committed_to_blockchain": 0,
                    "tokens_committed_to_db": 200,
                    "max_tokens": 400,
                },
            )
            reason = await again.task
            assert reason.startswith("not working for this proxy: The proxy now reports 0 tokens")
            assert not again.session.is_ready
            assert (again.balance().db_tokens, again.balance().max_tokens) == (200, 400)
            assert "lost its records" in again.balance().note
        finally:
            await again.finish()
            await proxy.aclose()


@pytest.mark.allow_log_warnings  # the hold is logged with its reason
async def test_a_proxy_owing_more_than_the_cap_gets_no_new_work() -> None:
    proxy = ScriptedProxy()
    await proxy.start()
    payments = PaymentBook.in_memory(fee_per_token=1_000_000)
    payments.configure(payments.terms, exposure_cap_nanoton=300_000_000)  # 0.3 TON
    await payments.start()
    async with serving_backend() as server:
        rig = _Rig(proxy, server, NO_POLL, payments)
        try:
            await proxy.replay_handshake()
            await wait_for(lambda: rig.session.is_ready, "ready")
            proxy.send(r2w(8))  # max 400 tokens: it owes 0.4 TON now
            sent = decode((await proxy.read())["data"])
            assert sent == TLObject("worker.enabledDisabled", {"disabled": 1})
            reason = rig.session.state.value.hold_reason
            assert "owes you 0.4 TON, more than your limit of 0.3 TON" in reason
        finally:
            await rig.finish()
            await proxy.aclose()
            await payments.aclose()
