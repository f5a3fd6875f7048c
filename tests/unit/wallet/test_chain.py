"""The chain contract's helpers: seqno from proven state, comments, hashes, errors, backends."""

# pytoniq-core ships py.typed but leaves most methods unannotated.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.block import CurrencyCollection
from pytoniq_core.tlb.transaction import InternalMsgInfo, MessageAny

from app.core.errors import UserFacingError
from app.core.money import Nanoton
from app.core.paths import AppPaths
from app.wallet.chain import (
    AccountState,
    ChainBackend,
    ChainError,
    ChainOffline,
    ChainTimeout,
    MessageRejected,
    normalized_external_hash,
    raw_address,
    text_comment,
    wallet_seqno,
)
from app.wallet.chain_decode import decode_transaction
from app.wallet.chain_factory import NoNetwork, open_chain
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.lite_backend import LiteBackend
from app.wallet.mnemonic import KeyPair
from app.wallet.simulated_chain import SimulatedChain
from app.wallet.transfer import TransferOrder, boc_hashes, sign_transfer

ADDRESS = "0:" + "ab" * 32


def active_state(contract: WalletContract, data: Cell | None = None) -> AccountState:
    return AccountState(
        address=contract.raw_address,
        balance=Nanoton(1),
        status="active",
        code=bytes(contract.code.to_boc()),
        data=bytes((data or contract.initial_data).to_boc()),
    )


@pytest.mark.parametrize("version", list(WalletVersion))
def test_seqno_is_read_from_the_wallet_data(vector_keys: KeyPair, version: WalletVersion) -> None:
    contract = WalletContract(version, TonNetwork.TESTNET, vector_keys.public_key)
    assert wallet_seqno(active_state(contract)) == 0
    cs = contract.initial_data.begin_parse()
    bumped = Builder()
    if version is WalletVersion.V5R1:
        bumped.store_bit(cs.load_bit())
    cs.load_uint(32)
    bumped.store_uint(41, 32).store_slice(cs)
    assert wallet_seqno(active_state(contract, bumped.end_cell())) == 41
    assert wallet_seqno(AccountState(ADDRESS, Nanoton(5), "uninit")) == 0
    assert wallet_seqno(AccountState(ADDRESS, Nanoton(0), "nonexist")) == 0


def test_seqno_of_something_that_is_not_a_wallet(vector_keys: KeyPair) -> None:
    with pytest.raises(ChainError, match="state was not returned"):
        wallet_seqno(AccountState(ADDRESS, Nanoton(1), "active"))
    other = Builder().store_uint(7, 8).end_cell()
    state = AccountState(
        ADDRESS, Nanoton(1), "active", bytes(other.to_boc()), bytes(other.to_boc())
    )
    with pytest.raises(ChainError, match="not a V4R2 or V5R1 wallet"):
        wallet_seqno(state)


def test_account_state_repr_is_short() -> None:
    state = AccountState(ADDRESS, Nanoton(5), "active", b"x" * 500, b"y" * 500)
    assert repr(state) == f"AccountState({ADDRESS}, balance=5, status=active, last_tx_lt=0)"


def test_raw_address_of_every_form() -> None:
    assert raw_address(ADDRESS.upper().replace("0X", "0x")) == ADDRESS
    assert raw_address(Address(ADDRESS)) == ADDRESS
    friendly = Address(ADDRESS).to_str(is_bounceable=False, is_test_only=True)
    assert raw_address(friendly) == ADDRESS


def test_text_comments() -> None:
    def body(op: int, payload: bytes = b"", bits: int = 0, refs: int = 0) -> Cell:
        builder = Builder().store_uint(op, 32).store_bytes(payload)
        if bits:
            builder.store_uint(0, bits)
        for _ in range(refs):
            builder.store_ref(Cell.empty())
        cell: Cell = builder.end_cell()
        return cell

    long = "é" * 200  # needs a continuation cell
    snake = Builder().store_uint(0, 32).store_snake_string(long).end_cell()
    assert text_comment(snake) == long
    assert text_comment(body(0, b"hi")) == "hi"
    assert text_comment(None) is None
    assert text_comment(Cell.empty()) is None
    assert text_comment(body(0xFFFFFFFF, b"hi")) is None  # bounced
    assert text_comment(body(0x2167DA4B, b"secret")) is None  # encrypted comment
    assert text_comment(body(0, b"hi", bits=3)) is None  # not whole bytes
    assert text_comment(body(0, b"hi", refs=2)) is None  # not a snake
    assert text_comment(body(0, b"\xff\xfe")) is None  # not UTF-8


def test_normalized_hash_matches_the_signer(vector_keys: KeyPair) -> None:
    contract = WalletContract(WalletVersion.V5R1, TonNetwork.TESTNET, vector_keys.public_key)
    order = TransferOrder(Address(ADDRESS), Nanoton(5), bounce=False)
    signed = sign_transfer(contract, vector_keys, order, seqno=0, valid_until=10**9, deployed=False)
    cell = Cell.one_from_boc(signed.boc)
    assert normalized_external_hash(cell) == boc_hashes(signed.boc)[1] == signed.normalized_hash
    with pytest.raises(ValueError, match="not a message"):
        normalized_external_hash(Builder().store_uint(0, 4).store_uint(0, 2).end_cell())
    internal = MessageAny(
        info=InternalMsgInfo(
            True,
            False,
            False,
            Address(ADDRESS),
            Address(ADDRESS),
            CurrencyCollection(grams=1),
            0,
            0,
            0,
            0,
        ),
        init=None,
        body=Cell.empty(),
    ).serialize()
    with pytest.raises(ValueError, match="not an external"):
        normalized_external_hash(internal)


def test_errors_are_user_facing_and_typed() -> None:
    assert isinstance(ChainOffline(), UserFacingError)
    timeout = ChainTimeout("send", 2.5)
    assert "2.5 s" in timeout.message
    assert (timeout.what, timeout.seconds) == ("send", 2.5)
    used = MessageRejected("exitcode=33", seqno_used=True, exit_code=33)
    assert "refresh" in used.hint
    assert (used.reason, used.exit_code) == ("exitcode=33", 33)
    assert "no fee" in MessageRejected("bad", seqno_used=False).hint


def test_undecodable_in_message_is_a_chain_error() -> None:
    tx = SimpleNamespace(
        description=SimpleNamespace(), in_msg=SimpleNamespace(is_external=False, info=None)
    )
    with pytest.raises(ChainError, match="could not be read"):
        decode_transaction(tx, ADDRESS)
    empty = SimpleNamespace(
        description=SimpleNamespace(compute_ph=None, action=None, aborted=False),
        in_msg=None,
        out_msgs=[],
        cell=Cell.empty(),
        lt=2,
        now=3,
        prev_trans_lt=1,
        prev_trans_hash=b"\x01" * 32,
        total_fees=SimpleNamespace(grams=0),
    )
    decoded = decode_transaction(empty, ADDRESS)
    assert (decoded.in_msg, decoded.compute_success, decoded.action_success) == (None, None, None)


async def test_no_network_backend_never_goes_online() -> None:
    chain = NoNetwork()
    assert isinstance(chain, ChainBackend)
    await chain.start()
    assert chain.online.value is False
    calls = [
        chain.get_account_state(ADDRESS),
        chain.get_seqno(ADDRESS),
        chain.get_server_time(),
        chain.send_boc(b""),
        chain.get_transactions(ADDRESS, 1),
        chain.run_get_method(ADDRESS, "seqno", []),
    ]
    for call in calls:
        with pytest.raises(ChainOffline):
            await call
    assert await chain.emulate_fee(b"") is None
    await chain.aclose()


@pytest.mark.allow_log_warnings
async def test_open_chain_per_network(tmp_path: Path) -> None:
    paths = AppPaths(tmp_path)
    assert isinstance(open_chain("devnet", paths), SimulatedChain)
    live = open_chain("testnet", paths)
    assert isinstance(live, LiteBackend)
    # The shipped liteserver list is public: the test suite never dials it (offline mode).
    await live.start()
    assert live.online.value is False
    with pytest.raises(ChainOffline, match="switched off"):
        await live.get_server_time()
    await live.aclose()
    with pytest.raises(UserFacingError, match="does not support"):
        open_chain("custom", paths)
