"""LiteBackend: the live adapter driven through a fake balancer and real loopback sockets."""

# pytoniq-core ships py.typed but leaves most methods unannotated.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nacl.signing
import pytest
from pytoniq.contract.contract import ContractError
from pytoniq.liteclient.balancer import BalancerError
from pytoniq.liteclient.client import LiteClientError, LiteServerError, RunGetMethodError
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.block import CurrencyCollection
from pytoniq_core.tlb.transaction import ExternalMsgInfo, InternalMsgInfo, MessageAny

from app.wallet.chain import (
    ChainError,
    ChainOffline,
    ChainTimeout,
    GetMethodFailed,
    MessageRejected,
    normalized_external_hash,
)
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.lite_backend import LiteBackend, NetworkConfigError, load_global_config
from app.wallet.mnemonic import KeyPair

ACCOUNT = "0:" + "ab" * 32
PEER = "0:" + "cd" * 32
NO_ADDRESS: Any = None  # addr_none: pytoniq-core accepts None where its hints say Address


def loopback_config(port: int) -> dict[str, Any]:
    key = bytes(nacl.signing.SigningKey(b"\x01" * 32).verify_key)
    zero = base64.b64encode(b"\x00" * 32).decode()
    return {
        "@type": "config.global",
        "liteservers": [
            {
                "ip": struct.unpack(">i", socket.inet_aton("127.0.0.1"))[0],
                "port": port,
                "id": {"@type": "pub.ed25519", "key": base64.b64encode(key).decode()},
            }
        ],
        "validator": {
            "init_block": {
                "workchain": -1,
                "shard": -(2**63),
                "seqno": 0,
                "root_hash": zero,
                "file_hash": zero,
            }
        },
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def comment_cell(text: str) -> Cell:
    cell: Cell = Builder().store_uint(0, 32).store_snake_string(text).end_cell()
    return cell


def internal(src: str | None, dest: str, value: int, body: Cell, *, bounced: bool = False) -> Any:
    info = InternalMsgInfo(
        True,
        True,
        bounced,
        Address(src) if src else NO_ADDRESS,
        Address(dest),
        CurrencyCollection(grams=value),
        0,
        0,
        0,
        0,
    )
    return MessageAny(info=info, init=None, body=body)


def external_to(dest: str) -> Any:
    return MessageAny(
        info=ExternalMsgInfo(NO_ADDRESS, Address(dest), 0), init=None, body=comment_cell("x")
    )


def fake_tx(lt: int, prev_lt: int, in_msg: Any, out_msgs: list[Any], *, vm: bool = True) -> Any:
    compute = (
        SimpleNamespace(type_="vm", success=True, exit_code=0)
        if vm
        else SimpleNamespace(type_="skipped")
    )
    return SimpleNamespace(
        cell=Builder().store_uint(lt, 64).end_cell(),
        lt=lt,
        now=1_800_000_000 + lt,
        prev_trans_lt=prev_lt,
        prev_trans_hash=bytes([prev_lt % 256]) * 32,
        in_msg=in_msg,
        out_msgs=out_msgs,
        total_fees=CurrencyCollection(grams=1000 + lt),
        description=SimpleNamespace(
            compute_ph=compute, action=SimpleNamespace(success=True), aborted=False
        ),
    )


class FakeBalancer:
    """The async surface of ``LiteBalancer`` that the adapter uses, answering from memory."""

    def __init__(self, peers: int = 2) -> None:
        self.alive_peers_num = 0
        self._peer_count = peers
        self.accounts: dict[str, tuple[Any, Any]] = {}
        self.transactions: list[Any] = []
        self.sent: list[bytes] = []
        self.fail_with: BaseException | None = None
        self.closed = False
        self.startups = 0

    async def start_up(self) -> None:
        self.startups += 1
        self.alive_peers_num = self._peer_count

    async def close_all(self) -> None:
        self.closed = True

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    async def raw_get_account_state(self, address: Address) -> tuple[Any, Any]:
        self._maybe_fail()
        return self.accounts.get(f"{address.wc}:{address.hash_part.hex()}", (None, None))

    async def get_time(self) -> Any:
        self._maybe_fail()
        return {"now": 1_800_000_123}

    async def raw_send_message(self, boc: bytes) -> int:
        self._maybe_fail()
        self.sent.append(boc)
        return 1

    async def raw_get_transactions(
        self, address: Address, count: int, lt: int, tx_hash: bytes
    ) -> tuple[list[Any], list[Any]]:
        self._maybe_fail()
        older = [tx for tx in self.transactions if tx.lt <= lt]
        return older[:count], []

    async def run_get_method(self, address: Address, method: str, stack: list[Any]) -> list[Any]:
        self._maybe_fail()
        if method != "seqno":
            raise RunGetMethodError(address, method, 11)
        return [7]


def account_of(contract: WalletContract, *, status: str, balance: int, last_lt: int) -> Any:
    storage_state = SimpleNamespace(type_=status, state_init=contract.state_init)
    account = SimpleNamespace(
        storage=SimpleNamespace(state=storage_state, balance=CurrencyCollection(grams=balance))
    )
    shard = SimpleNamespace(last_trans_lt=last_lt, last_trans_hash=bytes([last_lt % 256]) * 32)
    return account, shard


@pytest.fixture
def fake() -> FakeBalancer:
    return FakeBalancer()


@pytest.fixture
async def backend(fake: FakeBalancer) -> AsyncIterator[LiteBackend]:
    chain = LiteBackend(
        loopback_config(1), timeout=1.0, balancer_factory=lambda cfg, trust, timeout: fake
    )
    await chain.start()
    yield chain
    await chain.aclose()


async def test_account_state_and_seqno_come_from_the_proven_state(
    backend: LiteBackend, fake: FakeBalancer, vector_keys: KeyPair
) -> None:
    contract = WalletContract(WalletVersion.V4R2, TonNetwork.MAINNET, vector_keys.public_key)
    fake.accounts[contract.raw_address] = account_of(
        contract, status="account_active", balance=5_000, last_lt=9
    )
    state = await backend.get_account_state(contract.raw_address)
    assert (state.status, state.balance, state.last_tx_lt) == ("active", 5_000, 9)
    assert state.code == contract.code.to_boc()
    assert await backend.get_seqno(contract.raw_address) == 0  # fresh data: seqno 0
    assert backend.online.value is True

    fake.accounts[ACCOUNT] = account_of(contract, status="account_uninit", balance=1, last_lt=1)
    assert (await backend.get_account_state(ACCOUNT)).status == "uninit"
    assert await backend.get_seqno(ACCOUNT) == 0
    frozen = account_of(contract, status="account_frozen", balance=0, last_lt=2)
    fake.accounts[PEER] = frozen
    assert (await backend.get_account_state(PEER)).status == "frozen"


async def test_nonexistent_account(backend: LiteBackend) -> None:
    state = await backend.get_account_state(ACCOUNT)
    assert (state.status, state.balance, state.last_tx_lt) == ("nonexist", 0, 0)
    assert await backend.get_transactions(ACCOUNT, 10) == []
    assert await backend.get_transactions(ACCOUNT, 0) == []


async def test_unknown_account_state_is_an_error(
    backend: LiteBackend, fake: FakeBalancer, vector_keys: KeyPair
) -> None:
    contract = WalletContract(WalletVersion.V4R2, TonNetwork.MAINNET, vector_keys.public_key)
    fake.accounts[ACCOUNT] = account_of(contract, status="account_weird", balance=1, last_lt=1)
    with pytest.raises(ChainError, match="Unknown account state"):
        await backend.get_account_state(ACCOUNT)


async def test_server_time(backend: LiteBackend, fake: FakeBalancer) -> None:
    assert await backend.get_server_time() == 1_800_000_123

    async def garbage() -> Any:
        return {"now": "soon"}

    fake.get_time = garbage  # type: ignore[method-assign]
    with pytest.raises(ChainError, match="unreadable time"):
        await backend.get_server_time()


async def test_send_boc_success_and_rejections(backend: LiteBackend, fake: FakeBalancer) -> None:
    await backend.send_boc(b"boc")
    assert fake.sent == [b"boc"]

    fake.fail_with = LiteServerError(
        0,
        "cannot apply external message to current state : External message was not accepted\n"
        "Cannot run message on account: inbound external message rejected by transaction "
        "ABC: exitcode=33, steps=31, gas_used=0",
    )
    with pytest.raises(MessageRejected) as used:
        await backend.send_boc(b"boc")
    assert (used.value.seqno_used, used.value.exit_code) == (True, 33)
    assert "exit code 33" in str(used.value)

    fake.fail_with = LiteServerError(0, "External message was not accepted: exitcode=35")
    with pytest.raises(MessageRejected) as bad_sig:
        await backend.send_boc(b"boc")
    assert (bad_sig.value.seqno_used, bad_sig.value.exit_code) == (False, 35)

    fake.fail_with = LiteServerError(-400, "failed to deserialize the message")
    with pytest.raises(MessageRejected) as malformed:
        await backend.send_boc(b"boc")
    assert (malformed.value.seqno_used, malformed.value.exit_code) == (False, None)


async def test_send_timeout_is_unknown_not_rejected(fake: FakeBalancer) -> None:
    async def hang(boc: bytes) -> int:
        await asyncio.Event().wait()
        return 1

    fake.raw_send_message = hang  # type: ignore[method-assign]
    chain = LiteBackend(loopback_config(1), timeout=0.05, balancer_factory=lambda *_: fake)
    with pytest.raises(ChainTimeout):
        await chain.send_boc(b"boc")
    await chain.aclose()


@pytest.mark.parametrize(
    ("error", "expected", "offline"),
    [
        (BalancerError("have no alive peers"), ChainOffline, True),
        (ConnectionResetError(), ChainOffline, True),
        (LiteClientError("boom"), ChainError, False),
        (ContractError("derived from BaseException"), ChainError, False),
    ],
    ids=["no-peers", "connection-reset", "client-error", "contract-error"],
)
async def test_pytoniq_errors_are_mapped(
    backend: LiteBackend,
    fake: FakeBalancer,
    error: BaseException,
    expected: type[Exception],
    offline: bool,
) -> None:
    fake.fail_with = error
    with pytest.raises(expected):
        await backend.get_account_state(ACCOUNT)
    assert backend.online.value is not offline


async def test_no_live_peer_is_offline_and_recovers(fake: FakeBalancer) -> None:
    fake._peer_count = 0
    chain = LiteBackend(loopback_config(1), balancer_factory=lambda *_: fake)
    await chain.start()
    assert chain.online.value is False
    with pytest.raises(ChainOffline):
        await chain.get_server_time()
    assert fake.startups == 1  # the balancer's own checker reconnects; no second start-up
    published: list[bool] = []
    chain.online.subscribe(published.append)
    fake.alive_peers_num = 1  # a peer came back
    assert await chain.get_server_time() == 1_800_000_123
    assert published == [True]
    await chain.aclose()
    assert fake.closed


async def test_history_pages_and_decodes(
    backend: LiteBackend, fake: FakeBalancer, vector_keys: KeyPair
) -> None:
    contract = WalletContract(WalletVersion.V4R2, TonNetwork.MAINNET, vector_keys.public_key)
    fake.accounts[ACCOUNT] = account_of(contract, status="account_active", balance=1, last_lt=40)
    ext = external_to(ACCOUNT)
    fake.transactions = [
        fake_tx(lt, lt - 1, internal(PEER, ACCOUNT, lt, comment_cell(f"#{lt}")), [])
        for lt in range(40, 2, -1)
    ]
    fake.transactions[0] = fake_tx(40, 39, ext, [internal(None, PEER, 5, comment_cell("out")), ext])
    fake.transactions[1] = fake_tx(
        39,
        38,
        internal(PEER, ACCOUNT, 9, Builder().store_uint(0xFFFFFFFF, 32).end_cell(), bounced=True),
        [],
        vm=False,
    )
    txs = await backend.get_transactions(ACCOUNT, 20)
    assert [tx.lt for tx in txs] == list(range(40, 20, -1))
    first, bounced, plain = txs[0], txs[1], txs[2]
    assert first.in_msg is not None
    assert first.in_msg.external
    assert first.in_msg_normalized_hash == normalized_external_hash(ext.serialize())
    assert [(m.destination, m.value, m.comment) for m in first.out_msgs] == [(PEER, 5, "out")]
    assert (first.compute_success, first.compute_exit_code, first.total_fees) == (True, 0, 1040)
    assert bounced.in_msg is not None
    assert (bounced.in_msg.bounced, bounced.in_msg.comment) == (True, None)
    assert (bounced.compute_success, bounced.compute_exit_code) == (None, None)
    assert plain.in_msg is not None
    assert (plain.in_msg.source, plain.in_msg.comment, plain.in_msg.value) == (PEER, "#38", 38)
    more = await backend.get_transactions(ACCOUNT, 100, txs[-1].prev_lt, txs[-1].prev_hash)
    assert [tx.lt for tx in more] == list(range(20, 2, -1))


async def test_undecodable_transaction_is_an_error(
    backend: LiteBackend, fake: FakeBalancer
) -> None:
    fake.transactions = [SimpleNamespace(lt=5)]
    with pytest.raises(ChainError, match="could not be read"):
        await backend.get_transactions(ACCOUNT, 5, 5, b"\x05" * 32)


async def test_get_methods(backend: LiteBackend) -> None:
    assert await backend.run_get_method(ACCOUNT, "seqno", []) == [7]
    with pytest.raises(GetMethodFailed, match="exit code 11"):
        await backend.run_get_method(ACCOUNT, "get_public_key", [])
    assert await backend.emulate_fee(b"boc") is None


async def test_refused_loopback_port_is_offline() -> None:
    chain = LiteBackend(loopback_config(free_port()), timeout=1.0, connect_timeout=5.0)
    await chain.start()
    assert chain.online.value is False
    with pytest.raises(ChainOffline):
        await chain.get_account_state(ACCOUNT)
    await chain.aclose()


async def test_silent_listener_is_offline_within_the_connect_timeout() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    chain = LiteBackend(loopback_config(port), timeout=0.2, connect_timeout=0.2)
    try:
        with pytest.raises(ChainOffline):
            await chain.get_server_time()
        assert chain.online.value is False
    finally:
        await chain.aclose()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_invalid_config_is_reported() -> None:
    with pytest.raises(NetworkConfigError, match="no liteservers"):
        LiteBackend({"liteservers": []})
    broken = loopback_config(1)
    broken["liteservers"][0]["id"]["key"] = base64.b64encode(b"\x01" * 32).decode()
    chain = LiteBackend(broken)
    with pytest.raises(NetworkConfigError, match="not valid"):
        await chain.get_server_time()


def test_load_global_config(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(loopback_config(5)))
    assert load_global_config("testnet", good)["liteservers"][0]["port"] == 5
    with pytest.raises(NetworkConfigError, match="missing"):
        load_global_config("testnet", tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(NetworkConfigError, match="cannot be read"):
        load_global_config("testnet", broken)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"liteservers": []}))
    with pytest.raises(NetworkConfigError, match="no liteservers"):
        load_global_config("testnet", empty)


async def test_closing_never_fails(fake: FakeBalancer) -> None:
    never_started = LiteBackend(loopback_config(1), balancer_factory=lambda *_: fake)
    await never_started.aclose()  # nothing to close

    async def broken_close() -> None:
        raise OSError("socket already gone")

    fake.close_all = broken_close  # type: ignore[method-assign]
    chain = LiteBackend(loopback_config(1), balancer_factory=lambda *_: fake)
    await chain.start()
    await chain.aclose()
    assert chain.online.value is False


async def test_start_up_cut_short_closes_half_open_peers() -> None:
    closed: list[str] = []

    class Peer:
        def __init__(self, name: str, fail: bool) -> None:
            self.name, self.fail = name, fail

        async def close(self) -> None:
            closed.append(self.name)
            if self.fail:
                raise OSError("already closed")

    class Stuck(FakeBalancer):
        def __init__(self) -> None:
            super().__init__()
            self._peers = [Peer("a", True), Peer("b", False)]  # what pytoniq's balancer keeps

        async def start_up(self) -> None:
            await asyncio.Event().wait()

    stuck = Stuck()
    chain = LiteBackend(loopback_config(1), connect_timeout=0.05, balancer_factory=lambda *_: stuck)
    with pytest.raises(ChainOffline):
        await chain.get_server_time()
    assert closed == ["a", "b"]
    await chain.aclose()
    assert closed == ["a", "b", "a", "b"]
