"""The test proxy pays as the reference does: three counters, anchored vouchers, real addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.cell import Cell

from app.devnet.devnet_root import devnet_root_config
from app.devnet.proxy_state import lose_database
from app.devnet.test_proxy import (
    DEVNET_CLIENT_OWNER,
    PROXY_CONTRACT_FLOAT,
    TestProxy,
)
from app.network.connection import RemoteQueryError
from app.network.tl import TLObject, encode
from app.network.vouchers import Voucher, verify_voucher
from app.wallet.chain import raw_address
from app.wallet.cocoon_contracts import proxy_contract_address, worker_contract_address
from app.wallet.simulated_chain import SimulatedChain
from tests.unit.devnet.fake_worker import (
    OWNER,
    FakeWorker,
    final_info,
    http_response,
    next_packet,
    worker_params,
)

MODEL = "Qwen/Qwen3-8B"


def _slow(state_dir: Path | None = None) -> TestProxy:
    """A proxy whose periodic commits never come: the test commits by calling them."""
    return TestProxy(state_dir=state_dir, db_commit_every=3600, chain_commit_every=3600)


@pytest.fixture
async def proxy() -> AsyncIterator[TestProxy]:
    p = _slow()
    await p.start()
    yield p
    await p.aclose()


def _request() -> bytes:
    fields = {"method": "POST", "url": "/v1/chat/completions", "http_version": "HTTP/1.1"}
    return encode(TLObject("http.request", {**fields, "headers": [], "payload": b"{}"}))


async def _serve(proxy: TestProxy, worker: FakeWorker, tokens: int) -> TLObject:
    """Route one request to ``worker``, answer it billing ``tokens``; the payment packet."""
    proxy.run_query(model=MODEL, request=_request(), timeout=10)
    rid = (await next_packet(worker, "proxy.runQueryEx"))["request_id"]
    worker.send(
        "proxy.queryAnswerEx",
        request_id=rid,
        flags=1,
        answer=http_response(),
        final_info=final_info(tokens),
    )
    return await next_packet(worker, "proxy.workerRequestPayment")


def _voucher(proxy: TestProxy, signed: TLObject) -> Voucher:
    assert signed.name == "proxy.signedPayment"
    return verify_voucher(
        signed["data"],
        proxy_public_key=proxy.public_key,
        worker_sc_address=proxy.worker_sc_address(OWNER),
    )


async def test_addresses_are_the_real_contracts_of_the_devnet_root(proxy: TestProxy) -> None:
    root = devnet_root_config()
    worker = FakeWorker()
    answer = await worker.handshake(proxy)
    proxy_sc = proxy_contract_address(
        owner=proxy.owner_address, proxy_public_key=proxy.public_key, root=root
    )
    assert raw_address(answer["params"]["proxy_sc_address"]) == proxy_sc
    assert raw_address(answer["worker_sc_address"]) == worker_contract_address(
        owner=raw_address(OWNER), proxy_sc=proxy_sc, proxy_public_key=proxy.public_key, root=root
    )
    status = await worker.query(TLObject("worker.updatePaymentStatus", {}))
    outer = Cell.one_from_boc(status["signed_payment"]["data"]).begin_parse()  # type: ignore[no-untyped-call]
    outer.skip_bits(32 + 64)
    assert outer.load_address() == Address(proxy_sc)  # excesses go to the proxy contract
    assert _voucher(proxy, status["signed_payment"]).tokens == 0
    await worker.conn.aclose()  # type: ignore[union-attr]


async def test_vouchers_follow_the_anchored_amount_everywhere(proxy: TestProxy) -> None:
    worker = FakeWorker()
    await worker.handshake(proxy)
    payment = await _serve(proxy, worker, 42)
    assert (payment["max_tokens"], payment["db_tokens"], payment["request_tokens"]) == (42, 0, 42)
    assert _voucher(proxy, payment["signed_payment"]).tokens == 0

    await proxy.commit_to_db()
    status = await worker.query(TLObject("worker.updatePaymentStatus", {}))
    assert (status["max_tokens"], status["db_tokens"]) == (42, 42)
    assert _voucher(proxy, status["signed_payment"]).tokens == 0
    assert worker.packets.empty()  # nothing new is anchored: no lone voucher

    await proxy.anchor()
    lone = await worker.packets.get()  # a lone proxy.signedPayment, right after the anchor
    assert _voucher(proxy, lone).tokens == 42
    payment = await _serve(proxy, worker, 8)
    assert (payment["max_tokens"], payment["db_tokens"]) == (50, 42)
    assert _voucher(proxy, payment["signed_payment"]).tokens == 42
    tally = proxy.tally(OWNER)
    assert (tally.max_tokens, tally.db_tokens, tally.committed_tokens) == (50, 42, 42)

    again = FakeWorker()  # a second worker of the same owner shares the tally
    await again.connect(proxy)
    await again.query(TLObject("worker.connectToProxy", {"params": worker_params()}))
    compare = await again.query(
        TLObject(
            "worker.compareBalanceWithProxy",
            {"tokens_committed_to_blockchain": 42, "tokens_committed_to_db": 42, "max_tokens": 50},
        )
    )
    assert (compare["tokens_committed_to_db"], compare["max_tokens"]) == (42, 50)
    assert _voucher(proxy, compare["signed_payment"]).tokens == 42
    await again.query(TLObject("worker.proxyHandshakeComplete", {"is_disabled": True}))
    await proxy.commit_to_db()
    await proxy.anchor()
    for link in (worker, again):  # every connected link of that owner hears of it
        assert _voucher(proxy, await next_packet(link, "proxy.signedPayment")).tokens == 50
    await again.conn.aclose()  # type: ignore[union-attr]
    await worker.conn.aclose()  # type: ignore[union-attr]


async def test_periodic_commits_reach_the_worker_on_their_own() -> None:
    proxy = TestProxy(db_commit_every=0.05, chain_commit_every=0.1)
    await proxy.start()
    try:
        worker = FakeWorker()
        await worker.handshake(proxy)
        await _serve(proxy, worker, 42)
        lone = await next_packet(worker, "proxy.signedPayment")
        assert _voucher(proxy, lone).tokens == 42
        tally = proxy.tally(OWNER)
        assert tally.max_tokens >= tally.db_tokens >= tally.committed_tokens == 42
        await worker.conn.aclose()  # type: ignore[union-attr]
    finally:
        await proxy.aclose()


async def test_a_bad_owner_address_is_refused(proxy: TestProxy) -> None:
    worker = FakeWorker()
    await worker.connect(proxy)
    with pytest.raises(RemoteQueryError, match="bad worker owner address"):
        await worker.query(
            TLObject("worker.connectToProxy", {"params": worker_params(worker_owner_address="x")})
        )


async def _compare(proxy: TestProxy, tcb: int, tdb: int, top: int) -> TLObject:
    worker = FakeWorker()
    await worker.connect(proxy)
    await worker.query(TLObject("worker.connectToProxy", {"params": worker_params()}))
    counters = {"tokens_committed_to_blockchain": tcb, "tokens_committed_to_db": tdb}
    return await worker.query(
        TLObject("worker.compareBalanceWithProxy", {**counters, "max_tokens": top})
    )


async def test_a_restart_resumes_key_addresses_and_counters(tmp_path: Path) -> None:
    first = _slow(tmp_path)
    await first.start()
    worker = FakeWorker()
    await worker.handshake(first)
    await _serve(first, worker, 42)
    await first.commit_to_db()
    await first.anchor()
    await _serve(first, worker, 8)
    await first.commit_to_db()
    await _serve(first, worker, 5)  # never reaches the database
    identity = (first.public_key, first.sc_address, first.worker_sc_address(OWNER))
    await first.aclose()

    second = _slow(tmp_path)
    await second.start()
    try:
        assert (second.public_key, second.sc_address, second.worker_sc_address(OWNER)) == identity
        tally = second.tally(OWNER)
        assert (tally.max_tokens, tally.db_tokens, tally.committed_tokens) == (50, 50, 42)
        assert tally.requests == 2
        compare = await _compare(second, 42, 50, 55)  # the worker remembers more than the proxy
        assert (compare["max_tokens"], compare["error_code"]) == (50, 1)
        assert _voucher(second, compare["signed_payment"]).tokens == 42
    finally:
        await second.aclose()


async def test_a_proxy_that_lost_its_database(tmp_path: Path) -> None:
    first = _slow(tmp_path)
    await first.start()
    worker = FakeWorker()
    await worker.handshake(first)
    await _serve(first, worker, 42)
    await first.commit_to_db()
    await first.anchor()
    key = first.public_key
    await first.aclose()

    lose_database(tmp_path)  # same key and contracts, every tally back at zero
    second = _slow(tmp_path)
    await second.start()
    try:
        assert second.public_key == key
        assert second.tally(OWNER).max_tokens == 0
        with pytest.raises(RemoteQueryError, match="more tokens than this proxy knows"):
            await _compare(second, 42, 42, 42)
    finally:
        await second.aclose()

    lose_database(tmp_path, keep_key=False)  # a new proxy altogether
    third = _slow(tmp_path)
    await third.start()
    assert third.public_key != key
    await third.aclose()


async def test_clients_pay_into_the_deployed_proxy_contract(tmp_path: Path) -> None:
    chain = SimulatedChain(None)
    await chain.start()
    proxy = TestProxy(
        state_dir=tmp_path, chain=chain, db_commit_every=3600, chain_commit_every=3600
    )
    await proxy.start()
    try:
        account = await chain.get_account_state(proxy.sc_raw_address)
        assert (account.status, account.balance) == ("active", PROXY_CONTRACT_FLOAT)
        worker = FakeWorker()
        await worker.handshake(proxy)
        await _serve(proxy, worker, 40)
        await _serve(proxy, worker, 2)
        await proxy.commit_to_db()
        await proxy.commit_to_db()  # nothing new billed: no second payment
        price = devnet_root_config().price_per_token
        payments = [
            tx.in_msg
            for tx in await chain.get_transactions(proxy.sc_raw_address, 10)
            if tx.in_msg is not None and tx.in_msg.source == raw_address(DEVNET_CLIENT_OWNER)
        ]
        assert [p.value for p in payments] == [42 * price]
        account = await chain.get_account_state(proxy.sc_raw_address)
        assert account.balance == PROXY_CONTRACT_FLOAT + 42 * price
        await worker.conn.aclose()  # type: ignore[union-attr]
    finally:
        await proxy.aclose()
    again = TestProxy(state_dir=tmp_path, chain=chain)  # deploying again changes nothing
    await again.start()
    await again.aclose()
    assert (await chain.get_account_state(proxy.sc_raw_address)).balance == account.balance
    await chain.aclose()
