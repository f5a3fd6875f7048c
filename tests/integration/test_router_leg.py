"""The router leg end to end: a real worker dials a COCOON router's reverse port itself.

Client → client API → test-mode proxy ← tunnel ← :class:`~tests.router_rig.TestRouter` ←
proof of work + mutual RA-TLS ← CocoonWorker → RequestServer → mock backend, on loopback. The
router plays ``router -R PORT:127.0.0.1:PROXY@policy``; a bad challenge or a bad router
certificate gives the session a plain reason and the worker dials again.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app.devnet.client_api import ClientApi
from app.devnet.mock_backend import MockBackend, MockBackendConfig
from app.devnet.test_proxy import TestProxy
from app.network.dialer import router_leg_dialer
from app.network.request_server import RequestServer
from app.network.worker import CocoonWorker, WorkerStatus, WorkerTimers
from app.network.worker_config import WorkerConfig
from tests.router_rig import RouterConfig, TestRouter
from tests.unit.network.pow_server import reference_verify
from tests.unit.network.ratls_server import forged_cert
from tests.unit.network.session_fixtures import TRACE_MODEL, TRACE_OWNER, wait_for

MODEL = "Qwen/Qwen3-8B"
TIMERS = WorkerTimers(tick=(0.01, 0.02), redial_after=0.05)


@dataclass
class Stack:
    proxy: TestProxy
    router: TestRouter
    api: ClientApi
    worker: CocoonWorker
    close_reasons: list[str] = field(default_factory=list)

    def on_status(self, status: WorkerStatus) -> None:
        for state in status.proxies:
            if state.close_reason and state.close_reason not in self.close_reasons:
                self.close_reasons.append(state.close_reason)

    async def chat(self) -> tuple[int, dict[str, Any]]:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            url = f"{self.api.url}/v1/chat/completions"
            async with session.post(url, json=body) as response:
                return response.status, json.loads(await response.read())


@asynccontextmanager
async def _stack(
    worker_policy: str, router: RouterConfig, *, require: str | None = None
) -> AsyncIterator[Stack]:
    """The whole chain; ``require`` (what the worker demands of the router's certificate) other
    than None dials with an explicit :func:`router_leg_dialer` instead of the config's default."""
    backend = MockBackend(MockBackendConfig(mode="json", chunks=5, delay_ms=1))
    await backend.start()
    server = RequestServer(backend.endpoint, model=TRACE_MODEL, max_active_requests=8)
    await server.start()
    proxy = TestProxy(db_commit_every=0.05, chain_commit_every=0.1)
    await proxy.start()
    api = ClientApi(proxy)
    await api.start()
    test_router = TestRouter(("127.0.0.1", proxy.port), router)
    await test_router.start()
    config = WorkerConfig.from_strings(
        proxies=[f"127.0.0.1:{test_router.port}"],
        model=TRACE_MODEL,
        owner_address=TRACE_OWNER,
        coefficient=1500,
        max_active_requests=8,
        router_leg=worker_policy,
    )
    dial = None if require is None else router_leg_dialer(policy=worker_policy, require=require)
    worker = CocoonWorker(config, server=server, timers=TIMERS, dial=dial)
    stack = Stack(proxy, test_router, api, worker)
    worker.status.subscribe(stack.on_status)
    try:
        yield stack
    finally:
        await worker.aclose()
        await test_router.aclose()
        await api.aclose()
        await proxy.aclose()
        await server.aclose()
        await backend.aclose()


@pytest.mark.parametrize(
    ("policy", "require", "seen"),
    [
        # The config's dialer presents ``router_leg`` and demands nothing of the router's quote.
        ("any", None, "any: no attestation (test mode)"),
        ("fake_tdx", None, "any: no attestation (test mode)"),
        ("fake_tdx", "fake_tdx", "fake_tdx: quote bound to key"),
    ],
    ids=["any", "fake_tdx", "fake_tdx-both-ways"],
)
async def test_worker_serves_and_is_billed_through_the_router(
    policy: str, require: str | None, seen: str
) -> None:
    async with _stack(policy, RouterConfig(policy=policy), require=require) as stack:
        await stack.worker.start()
        await wait_for(lambda: stack.worker.status.value.connected_proxies == 1, "worker ready")

        status, answer = await stack.chat()
        assert status == 200
        assert answer["choices"][0]["message"]["content"] == "Hello from the mock."
        assert answer["usage"]["total_cost"] == 400
        await wait_for(lambda: stack.worker.status.value.served == 1, "served")
        tally = stack.proxy.tally(TRACE_OWNER)
        assert tally.requests == 1
        assert tally.max_tokens == stack.worker.status.value.tokens == 200

        # What each side made of the other's certificate.
        (state,) = stack.worker.status.value.proxies
        assert state.peer_attestation.startswith(seen), state.peer_attestation
        (record,) = stack.router.connections
        assert record.pow_ok is True
        assert record.tls_ok
        assert record.tunnelled
        assert record.bytes_to_target > 0
        assert record.bytes_to_client > 0
        assert record.client_attestation is not None
        assert record.client_attestation.policy == policy
        assert record.client_attestation.attested is (policy == "fake_tdx")
        assert record.cipher in {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"}
        assert not stack.close_reasons
    assert record.finished  # aclose ended the tunnel


def _rsa_cert() -> RouterConfig:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return RouterConfig(policy="any", cert=forged_cert(key=key))


def _wrong_quote() -> RouterConfig:
    return RouterConfig(policy="fake_tdx", cert=forged_cert(quote=bytes(64)))


@pytest.mark.allow_log_warnings  # the worker warns about each failed link
@pytest.mark.parametrize(
    ("require", "router", "reason", "detail"),
    [
        (None, RouterConfig(difficulty=29), "cannot connect: proof of work", "difficulty 29"),
        (None, RouterConfig(magic=0xDEADBEEF), "cannot connect: proof of work", "0xdeadbeef"),
        (None, _rsa_cert(), "cannot connect: TLS", "RSA"),
        ("fake_tdx", _wrong_quote(), "cannot connect: TLS", "does not match its public key"),
    ],
    ids=["difficulty-29", "bad-magic", "rsa-cert", "wrong-fake-quote"],
)
async def test_a_bad_router_gives_a_plain_reason_and_the_worker_retries(
    require: str | None, router: RouterConfig, reason: str, detail: str
) -> None:
    async with _stack(router.policy, router, require=require) as stack:
        await stack.worker.start()
        await wait_for(lambda: len(stack.router.connections) >= 2, "a second connection attempt")
        await wait_for(lambda: bool(stack.close_reasons), "a session closed")
        first = stack.close_reasons[0]
        assert first.startswith(reason), first
        assert detail in first
        assert stack.worker.status.value.connected_proxies == 0
        assert detail in stack.worker.status.value.last_error
        assert stack.proxy.links == []  # nothing ever reached the proxy
        record = stack.router.connections[0]
        assert record.bytes_to_target == 0  # not one byte of the runner framing went through
        if reason.endswith("proof of work"):
            assert record.pow_ok is None
            assert record.error.startswith("no proof-of-work answer")
        else:
            # TLS 1.3: the router's handshake ends first; the client checks and hangs up after.
            assert record.pow_ok is True
            assert record.tls_ok


@pytest.mark.allow_log_warnings
async def test_the_router_refuses_a_client_without_the_attestation_it_requires() -> None:
    # A worker under "any" sends no quote; a fake_tdx router drops it after the handshake.
    async with _stack("any", RouterConfig(policy="fake_tdx")) as stack:
        await stack.worker.start()
        await wait_for(lambda: len(stack.router.connections) >= 2, "a second connection attempt")
        await wait_for(lambda: stack.router.connections[0].finished, "the first one ended")
        record = stack.router.connections[0]
        assert record.pow_ok is True
        assert record.tls_ok
        assert record.client_attestation is None
        assert record.error == (
            "client attestation refused: the peer sent no TDX quote, which policy fake_tdx requires"
        )
        assert not record.tunnelled
        assert stack.worker.status.value.connected_proxies == 0


async def test_the_router_checks_the_answer_as_the_reference_does() -> None:
    # A client that answers with the wrong magic or a nonce that misses the target is refused.
    config = RouterConfig(difficulty=20, salt=bytes(16))
    assert not reference_verify(config.salt, -1, 20)
    async with TestRouter(("127.0.0.1", 9), config) as router:
        for answer in (struct.pack("<Iq", 0x12345678, 0), struct.pack("<Iq", 0x01827319, -1)):
            reader, writer = await asyncio.open_connection("127.0.0.1", router.port)
            challenge = await reader.readexactly(24)
            assert struct.unpack("<Ii", challenge[:8]) == (0x418E1291, 20)
            writer.write(answer)
            assert await reader.read() == b""  # the router hangs up
            writer.close()
            await writer.wait_closed()
        first, second = router.connections
        assert (first.pow_ok, first.error) == (False, "answer magic 0x12345678")
        assert (second.pow_ok, second.error) == (False, "PoW verification failed")


@pytest.mark.allow_log_warnings  # the worker warns when its tunnel is cut
async def test_closing_the_router_ends_its_tunnels_and_leaves_nothing_running() -> None:
    async with _stack("any", RouterConfig()) as stack:
        await stack.worker.start()
        await wait_for(lambda: stack.worker.status.value.connected_proxies == 1, "worker ready")
        await stack.router.aclose()
        assert all(record.finished for record in stack.router.connections)
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("test-router")]
        await wait_for(lambda: stack.worker.status.value.connected_proxies == 0, "link dropped")
        await wait_for(lambda: stack.proxy.links == [], "the proxy saw the worker go")
        # The worker dials again and finds the port closed.
        await wait_for(
            lambda: any(r.startswith("cannot connect: TCP") for r in stack.close_reasons),
            "a refused redial",
        )
