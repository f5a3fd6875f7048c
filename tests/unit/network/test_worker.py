"""CocoonWorker against the devnet test proxy on loopback: serving, control, failure, reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.devnet.test_proxy import TestProxy
from app.devnet.worker_link import AnswerChunk, AnswerEnd, AnswerHead
from app.network.proxy_session import SessionTimers
from app.network.request_server import RequestServer
from app.network.tl import TLObject, encode
from app.network.worker import CocoonWorker, WorkerTimers
from app.network.worker_config import ProxyAddress, WorkerConfig, WorkerConfigError
from tests.unit.network.session_fixtures import (
    QUIET,
    TRACE_OWNER,
    ScriptedProxy,
    serving_backend,
    trace_config,
    wait_for,
)

FAST = WorkerTimers(
    tick=(0.005, 0.01),
    redial_after=0.02,
    replace_after=0.3,
    session=SessionTimers(
        handshake_timeout=5.0, payment_status_every=(3600, 3600), keepalive=QUIET
    ),
)


def _own_tasks() -> set[asyncio.Task[object]]:
    """Tasks started by the worker and its sessions (the backend's server keeps its own)."""
    return {
        t
        for t in asyncio.all_tasks()
        if t.get_name().startswith(("proxy-session", "cocoon-worker"))
        or "ProxySession" in t.get_coro().__qualname__  # type: ignore[union-attr]
        or "Connection" in t.get_coro().__qualname__  # type: ignore[union-attr]
    }


def _committed(worker: CocoonWorker, proxy: TestProxy) -> int:
    balance = worker.payments.for_proxy(proxy.sc_address)
    return balance.voucher_tokens if balance is not None else -1


def _request(model: str = "Qwen/Qwen3-8B") -> bytes:
    body = b'{"messages":[{"content":"hi","role":"user"}],"model":"' + model.encode() + b'"}'
    return encode(
        TLObject(
            "http.request",
            {
                "method": "POST",
                "url": "/v1/chat/completions",
                "http_version": "HTTP/1.1",
                "headers": [
                    TLObject("http.header", {"name": "Content-Type", "value": "application/json"})
                ],
                "payload": body,
            },
        )
    )


async def _ask(proxy: TestProxy) -> tuple[AnswerHead, bytes, int]:
    query = proxy.run_query(model="Qwen/Qwen3-8B", request=_request(), timeout=30)
    head: AnswerHead | None = None
    body = b""
    async for event in query.events():
        if isinstance(event, AnswerHead):
            head = event
        elif isinstance(event, AnswerChunk):
            body += event.data
        elif isinstance(event, AnswerEnd):
            assert head is not None
            return head, body, event.tokens
    raise AssertionError(f"request failed: {event}")


@pytest.fixture
async def server() -> AsyncIterator[RequestServer]:
    async with serving_backend("json") as srv:
        yield srv


def _worker(server: RequestServer, *ports: int, connections: int = 1) -> CocoonWorker:
    config = trace_config(proxies=[f"127.0.0.1:{p}" for p in ports], proxy_connections=connections)
    return CocoonWorker(config, server=server, timers=FAST)


@pytest.mark.allow_log_warnings  # the worker warns when its proxy goes away
async def test_serves_reconnects_and_leaves_no_tasks(server: RequestServer) -> None:
    proxy = TestProxy(db_commit_every=0.05, chain_commit_every=0.1)
    await proxy.start()
    again = TestProxy(port=proxy.port, db_commit_every=0.05, chain_commit_every=0.1)
    baseline = _own_tasks()
    worker = _worker(server, proxy.port)
    await worker.start()
    try:
        await _serve_and_reconnect(worker, proxy, again)
    finally:
        await worker.aclose()
        await worker.aclose()  # idempotent
        await proxy.aclose()
        await again.aclose()
    assert _own_tasks() <= baseline
    assert not worker.status.value.running


async def _serve_and_reconnect(worker: CocoonWorker, proxy: TestProxy, again: TestProxy) -> None:
    await wait_for(lambda: worker.status.value.connected_proxies == 1, "connected")

    head, body, tokens = await _ask(proxy)
    assert head.status == 200
    assert b'"total_cost":400' in body  # billed at the proxy's coefficient 1500
    assert tokens == 200  # the trace's usage at coefficient 1500
    await wait_for(lambda: worker.status.value.served == 1, "served")
    assert worker.status.value.tokens == proxy.tally(TRACE_OWNER).max_tokens == 200
    balance = worker.payments.for_proxy(proxy.sc_address)
    assert balance is not None
    await wait_for(lambda: _committed(worker, proxy) == 200, "voucher")

    await proxy.aclose()
    await wait_for(lambda: worker.status.value.connected_proxies == 0, "disconnect noticed")
    assert "peer closed" in worker.status.value.last_error

    await again.start()
    await wait_for(lambda: worker.status.value.connected_proxies == 1, "reconnected")
    # A new proxy process lost its tallies: the worker sends only what that proxy reports.
    assert (await _ask(again))[2] == 200


async def test_enable_disable_and_coefficient_reach_the_proxy(server: RequestServer) -> None:
    proxy = TestProxy(db_commit_every=0.05, chain_commit_every=0.1)
    await proxy.start()
    worker = _worker(server, proxy.port)
    worker.set_enabled(False)
    await worker.start()
    try:
        await wait_for(lambda: len(proxy.links) == 1, "connected")
        link = proxy.links[0]
        assert not link.enabled  # handshake said is_disabled
        worker.set_enabled(True)
        await wait_for(lambda: link.enabled, "enabled")
        worker.set_coefficient(2000)
        await wait_for(lambda: link.coefficient == 2000, "coefficient")
        assert worker.status.value.coefficient == 2000
        with pytest.raises(ValueError, match="coefficient"):
            worker.set_coefficient(-1)
        with pytest.raises(ValueError, match="coefficient"):
            worker.set_coefficient(10**9)
        worker.set_enabled(False, source="thermal")
        await wait_for(lambda: not link.enabled, "disabled")
        worker.set_enabled(False)
        worker.set_enabled(True, source="thermal")  # cooling down does not undo a pause
        assert worker.status.value.disabled_by == ("operator",)
        assert not worker.status.value.enabled
        worker.set_enabled(True)
        await wait_for(lambda: link.enabled, "enabled again")
        assert not worker.status.value.disabled_by
    finally:
        await worker.aclose()
        await proxy.aclose()


@pytest.mark.allow_log_warnings
async def test_a_broken_proxy_does_not_disturb_a_good_one(server: RequestServer) -> None:
    good = TestProxy()
    await good.start()
    bad = ScriptedProxy()
    await bad.start()
    worker = _worker(server, good.port, bad.port, connections=2)
    await worker.start()
    try:
        for _ in range(2):  # the bad proxy is re-dialled after each failure
            await bad.accept()
            bad.send_raw(b"\x02\x00\x00\x00\x01\x00\x00\x00xx")  # length 2: malformed
            await wait_for(lambda: "malformed frame" in worker.status.value.last_error, "noticed")
            bad.connected.clear()
        await wait_for(lambda: worker.status.value.connected_proxies == 1, "good one ready")
        assert (await _ask(good))[0].status == 200
    finally:
        await worker.aclose()
        await good.aclose()
        await bad.aclose()


async def test_a_target_that_never_gets_ready_is_replaced(server: RequestServer) -> None:
    silent = ScriptedProxy()  # accepts TCP, never answers tcp.connect
    await silent.start()
    good = TestProxy()
    await good.start()
    baseline = _own_tasks()
    worker = _worker(server, silent.port)
    await worker.start()
    try:
        await silent.connected.wait()  # the worker is stuck waiting for tcp.connected
        worker.set_proxies(
            [ProxyAddress("127.0.0.1", silent.port), ProxyAddress("127.0.0.1", good.port)]
        )
        await wait_for(lambda: worker.status.value.connected_proxies == 1, "ready elsewhere")
        assert [p.address for p in worker.status.value.proxies] == [f"127.0.0.1:{good.port}"]
        assert len(good.links) == 1
    finally:
        await worker.aclose()
        await good.aclose()
        await silent.aclose()
    assert _own_tasks() <= baseline


def test_default_dialer_follows_the_router_setting() -> None:
    config = WorkerConfig.from_strings(
        proxies=["10.0.0.1:11001"],
        model="m",
        owner_address=TRACE_OWNER,
        router_socks5="127.0.0.1:8116",
    )
    server = object()
    worker = CocoonWorker(config, server=server)  # type: ignore[arg-type]
    assert worker.status.value.coefficient == 1000
    assert not worker.status.value.running


async def test_a_new_proxy_list_moves_the_links(server: RequestServer) -> None:
    old, new = TestProxy(), TestProxy()
    await old.start()
    await new.start()
    worker = _worker(server, old.port)
    await worker.start()
    try:
        await wait_for(lambda: len(old.links) == 1, "on the old proxy")
        worker.reconnect_all()
        await wait_for(lambda: len(old.links) == 0, "dropped")
        await wait_for(lambda: len(old.links) == 1, "re-dialled")
        worker.set_proxies([ProxyAddress("127.0.0.1", new.port)])
        await wait_for(lambda: len(new.links) == 1 and not old.links, "moved")
        assert worker.status.value.last_error == ""  # planned moves are not errors
        with pytest.raises(WorkerConfigError):
            worker.set_proxies([])
    finally:
        await worker.aclose()
        await old.aclose()
        await new.aclose()
