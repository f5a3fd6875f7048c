"""SimulatedChain: accepts only what the real wallet contracts accept, and moves money exactly."""

# pytoniq-core ships py.typed but leaves most methods unannotated.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.block import CurrencyCollection
from pytoniq_core.tlb.transaction import ExternalMsgInfo, InternalMsgInfo, MessageAny

from app.core.money import Nanoton
from app.wallet.chain import (
    AccountState,
    ChainError,
    ChainTimeout,
    GetMethodFailed,
    MessageRejected,
)
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair
from app.wallet.simulated_chain import FAUCET_ADDRESS, FeeModel, SimulatedChain
from app.wallet.transfer import SendMode, SignedTransfer, TransferOrder, sign_transfer

NOW = 1_800_000_000
TON = 1_000_000_000
FEES = FeeModel()
ALICE = "0:" + "ab" * 32
BOB = "0:" + "cd" * 32
VERSIONS = [WalletVersion.V4R2, WalletVersion.V5R1]
# addr_none: pytoniq-core accepts None where its hints say Address.
NO_ADDRESS: Any = None


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


def other_keys(seed: int = 7) -> KeyPair:
    signing = nacl.signing.SigningKey(bytes([seed]) * 32)
    public = bytes(signing.verify_key)
    return KeyPair(public, bytes(signing) + public)


def order(
    dest: str = ALICE,
    amount: int = TON,
    *,
    bounce: bool = False,
    mode: SendMode = SendMode.PAY_FEES_SEPARATELY,
    comment: str | None = None,
) -> TransferOrder:
    return TransferOrder(Address(dest), Nanoton(amount), bounce=bounce, mode=mode, comment=comment)


def transfer(
    wallet: WalletContract,
    keys: KeyPair,
    the_order: TransferOrder | None = None,
    *,
    seqno: int = 0,
    deployed: bool = False,
) -> SignedTransfer:
    """``the_order`` (default: :func:`order`) signed by ``keys``, valid for a minute from NOW."""
    return sign_transfer(
        wallet, keys, the_order or order(), seqno=seqno, valid_until=NOW + 60, deployed=deployed
    )


def custom_body(
    contract: WalletContract,
    keys: KeyPair,
    *,
    seqno: int,
    valid_until: int,
    mode: int,
    amount: int,
    wallet_id: int | None = None,
) -> Cell:
    """A transfer body with free choice of wallet id and send mode (the app never signs these)."""
    internal = MessageAny(
        info=InternalMsgInfo(
            ihr_disabled=True,
            bounce=False,
            bounced=False,
            src=NO_ADDRESS,
            dest=Address(ALICE),
            value=CurrencyCollection(grams=amount),
            ihr_fee=0,
            fwd_fee=0,
            created_lt=0,
            created_at=0,
        ),
        init=None,
        body=Cell.empty(),
    ).serialize()
    wid = contract.wallet_id if wallet_id is None else wallet_id
    if contract.version is WalletVersion.V4R2:
        signed = (
            Builder()
            .store_uint(wid, 32)
            .store_uint(valid_until, 32)
            .store_uint(seqno, 32)
            .store_uint(0, 8)
            .store_uint(mode, 8)
            .store_ref(internal)
            .end_cell()
        )
        cell: Cell = Builder().store_bytes(keys.sign(signed.hash)).store_cell(signed).end_cell()
        return cell
    action = (
        Builder()
        .store_ref(Cell.empty())
        .store_uint(0x0EC3C86D, 32)
        .store_uint(mode, 8)
        .store_ref(internal)
        .end_cell()
    )
    signed = (
        Builder()
        .store_uint(0x7369676E, 32)
        .store_uint(wid, 32)
        .store_uint(valid_until, 32)
        .store_uint(seqno, 32)
        .store_uint(1, 1)
        .store_ref(action)
        .store_uint(0, 1)
        .end_cell()
    )
    cell = Builder().store_cell(signed).store_bytes(keys.sign(signed.hash)).end_cell()
    return cell


def external(contract: WalletContract, body: Cell, *, with_init: bool) -> bytes:
    message = MessageAny(
        info=ExternalMsgInfo(NO_ADDRESS, contract.address, 0),
        init=contract.state_init if with_init else None,
        body=body,
    ).serialize()
    return bytes(message.to_boc())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def chain(clock: Clock) -> AsyncIterator[SimulatedChain]:
    backend = SimulatedChain(clock=clock)
    await backend.start()
    yield backend
    await backend.aclose()


async def funded(
    chain: SimulatedChain, keys: KeyPair, version: WalletVersion, amount: int = 10 * TON
) -> WalletContract:
    contract = WalletContract(version, TonNetwork.TESTNET, keys.public_key)
    await chain.mint(contract.raw_address, amount)
    return contract


@pytest.mark.parametrize("version", VERSIONS)
async def test_deploy_and_transfer_moves_exact_amounts(
    chain: SimulatedChain, vector_keys: KeyPair, version: WalletVersion
) -> None:
    wallet = await funded(chain, vector_keys, version)
    assert (await chain.get_account_state(wallet.raw_address)).status == "uninit"
    signed = transfer(wallet, vector_keys, order(amount=1_500_000_000, comment="Hello ✓"))
    await chain.send_boc(signed.boc)

    state = await chain.get_account_state(wallet.raw_address)
    fees = FEES.external + FEES.deploy + FEES.forward
    assert state.status == "active"
    assert state.balance == 10 * TON - 1_500_000_000 - fees
    assert await chain.get_seqno(wallet.raw_address) == 1
    assert (await chain.get_account_state(ALICE)).balance == 1_500_000_000
    [tx, mint] = await chain.get_transactions(wallet.raw_address, 10)
    assert tx.in_msg is not None
    assert tx.in_msg.external
    assert tx.in_msg_normalized_hash == signed.normalized_hash
    assert tx.total_fees == fees
    assert (tx.compute_success, tx.action_success, tx.aborted) == (True, True, False)
    assert [(m.destination, m.value, m.comment) for m in tx.out_msgs] == [
        (ALICE, 1_500_000_000, "Hello ✓")
    ]
    assert (tx.prev_lt, tx.prev_hash) == (mint.lt, mint.hash)
    assert mint.in_msg is not None
    assert mint.in_msg.source == FAUCET_ADDRESS
    [incoming] = await chain.get_transactions(ALICE, 10)
    assert incoming.in_msg is not None
    assert (incoming.in_msg.source, incoming.in_msg.comment) == (wallet.raw_address, "Hello ✓")


@pytest.mark.parametrize(("version", "code"), [(WalletVersion.V4R2, 33), (WalletVersion.V5R1, 133)])
async def test_replayed_message_is_rejected_as_seqno_used(
    chain: SimulatedChain, vector_keys: KeyPair, version: WalletVersion, code: int
) -> None:
    wallet = await funded(chain, vector_keys, version)
    signed = transfer(wallet, vector_keys)
    await chain.send_boc(signed.boc)
    before = await chain.get_account_state(wallet.raw_address)
    with pytest.raises(MessageRejected) as caught:
        await chain.send_boc(signed.boc)
    assert caught.value.seqno_used
    assert caught.value.exit_code == code
    assert "refresh" in caught.value.describe()
    assert await chain.get_account_state(wallet.raw_address) == before


@pytest.mark.parametrize(("version", "code"), [(WalletVersion.V4R2, 35), (WalletVersion.V5R1, 135)])
async def test_bad_signature_is_rejected(
    chain: SimulatedChain, vector_keys: KeyPair, version: WalletVersion, code: int
) -> None:
    wallet = await funded(chain, vector_keys, version)
    body = custom_body(wallet, other_keys(), seqno=0, valid_until=NOW + 60, mode=3, amount=TON)
    with pytest.raises(MessageRejected) as caught:
        await chain.send_boc(external(wallet, body, with_init=True))
    assert (caught.value.exit_code, caught.value.seqno_used) == (code, False)
    assert "no fee" in caught.value.describe()
    assert (await chain.get_account_state(wallet.raw_address)).balance == 10 * TON


@pytest.mark.parametrize(("version", "code"), [(WalletVersion.V4R2, 36), (WalletVersion.V5R1, 136)])
async def test_expired_message_is_rejected(
    chain: SimulatedChain, vector_keys: KeyPair, clock: Clock, version: WalletVersion, code: int
) -> None:
    wallet = await funded(chain, vector_keys, version)
    await chain.send_boc(transfer(wallet, vector_keys).boc)
    late = transfer(wallet, vector_keys, seqno=1, deployed=True)
    clock.now = NOW + 60  # valid_until <= now: expired
    with pytest.raises(MessageRejected) as caught:
        await chain.send_boc(late.boc)
    assert (caught.value.exit_code, caught.value.seqno_used) == (code, False)
    assert await chain.get_seqno(wallet.raw_address) == 1


@pytest.mark.parametrize(("version", "code"), [(WalletVersion.V4R2, 34), (WalletVersion.V5R1, 134)])
async def test_wrong_wallet_id_is_rejected(
    chain: SimulatedChain, vector_keys: KeyPair, version: WalletVersion, code: int
) -> None:
    wallet = await funded(chain, vector_keys, version)
    body = custom_body(
        wallet,
        vector_keys,
        seqno=0,
        valid_until=NOW + 60,
        mode=3,
        amount=TON,
        wallet_id=wallet.wallet_id ^ 1,
    )
    with pytest.raises(MessageRejected) as caught:
        await chain.send_boc(external(wallet, body, with_init=True))
    assert (caught.value.exit_code, caught.value.seqno_used) == (code, False)


def test_mainnet_v5_message_is_not_valid_for_the_testnet_wallet(vector_keys: KeyPair) -> None:
    main = WalletContract(WalletVersion.V5R1, TonNetwork.MAINNET, vector_keys.public_key)
    test = WalletContract(WalletVersion.V5R1, TonNetwork.TESTNET, vector_keys.public_key)
    assert main.wallet_id != test.wallet_id
    assert main.raw_address != test.raw_address


@pytest.mark.parametrize(
    "boc",
    [
        b"",
        b"not a boc at all",
        bytes.fromhex("b5ee9c72410101010002000000"),  # a valid BOC of an empty cell
    ],
    ids=["empty", "garbage", "empty-cell"],
)
async def test_malformed_boc_is_rejected_and_changes_nothing(
    chain: SimulatedChain, boc: bytes
) -> None:
    await chain.mint(ALICE, TON)
    with pytest.raises(MessageRejected) as caught:
        await chain.send_boc(boc)
    assert not caught.value.seqno_used
    assert (await chain.get_account_state(ALICE)).balance == TON


async def test_internal_message_boc_is_not_an_external(chain: SimulatedChain) -> None:
    internal = order().destination
    cell = MessageAny(
        info=InternalMsgInfo(
            True, False, False, Address(BOB), internal, CurrencyCollection(grams=1), 0, 0, 0, 0
        ),
        init=None,
        body=Cell.empty(),
    ).serialize()
    with pytest.raises(MessageRejected, match="not an external"):
        await chain.send_boc(bytes(cell.to_boc()))


@pytest.mark.parametrize("version", VERSIONS)
async def test_truncated_body_is_rejected(
    chain: SimulatedChain, vector_keys: KeyPair, version: WalletVersion
) -> None:
    wallet = await funded(chain, vector_keys, version)
    body = Builder().store_uint(0x7369676E, 32).store_uint(5, 16).end_cell()
    with pytest.raises(MessageRejected):
        await chain.send_boc(external(wallet, body, with_init=True))


async def test_undeployed_wallet_needs_state_init(
    chain: SimulatedChain, vector_keys: KeyPair
) -> None:
    wallet = await funded(chain, vector_keys, WalletVersion.V5R1)
    signed = transfer(wallet, vector_keys, deployed=True)
    with pytest.raises(MessageRejected, match="not deployed"):
        await chain.send_boc(signed.boc)


async def test_state_init_must_match_the_address(
    chain: SimulatedChain, vector_keys: KeyPair
) -> None:
    wallet = await funded(chain, vector_keys, WalletVersion.V5R1)
    impostor = WalletContract(WalletVersion.V5R1, TonNetwork.TESTNET, other_keys().public_key)
    body = custom_body(wallet, vector_keys, seqno=0, valid_until=NOW + 60, mode=3, amount=TON)
    message = MessageAny(
        info=ExternalMsgInfo(NO_ADDRESS, wallet.address, 0), init=impostor.state_init, body=body
    ).serialize()
    with pytest.raises(MessageRejected, match="does not match the address"):
        await chain.send_boc(bytes(message.to_boc()))


async def test_wallet_without_money_cannot_pay_for_the_message(
    chain: SimulatedChain, vector_keys: KeyPair
) -> None:
    wallet = WalletContract(WalletVersion.V4R2, TonNetwork.TESTNET, vector_keys.public_key)
    signed = transfer(wallet, vector_keys)
    with pytest.raises(MessageRejected, match="cannot pay"):
        await chain.send_boc(signed.boc)
    assert (await chain.get_account_state(wallet.raw_address)).status == "nonexist"


async def test_frozen_account_rejects_externals(
    chain: SimulatedChain, vector_keys: KeyPair
) -> None:
    wallet = WalletContract(WalletVersion.V4R2, TonNetwork.TESTNET, vector_keys.public_key)
    with chain._ledger.write() as ledger:
        ledger.put_account(AccountState(wallet.raw_address, Nanoton(TON), "frozen"))
    signed = transfer(wallet, vector_keys)
    with pytest.raises(MessageRejected, match="frozen"):
        await chain.send_boc(signed.boc)


@pytest.mark.parametrize("version", VERSIONS)
async def test_bounceable_message_to_uninit_account_bounces_back(
    chain: SimulatedChain, vector_keys: KeyPair, version: WalletVersion
) -> None:
    wallet = await funded(chain, vector_keys, version)
    await chain.send_boc(
        transfer(wallet, vector_keys, order(BOB, TON // 2, bounce=True, comment="x")).boc
    )
    assert (await chain.get_account_state(BOB)).balance == 0
    refund, sent, _ = await chain.get_transactions(wallet.raw_address, 10)
    assert refund.in_msg is not None
    assert refund.in_msg.bounced
    assert refund.in_msg.value == TON // 2 - FEES.bounce
    assert refund.in_msg.source == BOB
    assert refund.in_msg.comment is None
    assert sent.out_msgs[0].bounce
    [at_bob] = await chain.get_transactions(BOB, 10)
    assert at_bob.aborted
    fees = FEES.external + FEES.deploy + FEES.forward + FEES.bounce
    assert (await chain.get_account_state(wallet.raw_address)).balance == 10 * TON - fees


async def test_bounceable_message_to_active_wallet_is_credited(
    chain: SimulatedChain, vector_keys: KeyPair
) -> None:
    wallet = await funded(chain, vector_keys, WalletVersion.V4R2)
    peer = await funded(chain, other_keys(), WalletVersion.V5R1, TON)
    await chain.send_boc(transfer(peer, other_keys(), order(BOB, TON // 10)).boc)
    before = (await chain.get_account_state(peer.raw_address)).balance
    await chain.send_boc(
        transfer(wallet, vector_keys, order(peer.raw_address, TON, bounce=True)).boc
    )
    assert (await chain.get_account_state(peer.raw_address)).balance == before + TON


@pytest.mark.parametrize("version", VERSIONS)
async def test_send_all_empties_the_wallet(
    chain: SimulatedChain, vector_keys: KeyPair, version: WalletVersion
) -> None:
    wallet = await funded(chain, vector_keys, version)
    signed = transfer(wallet, vector_keys, order(amount=0, mode=SendMode.SEND_ALL))
    fee = await chain.emulate_fee(signed.boc)
    assert fee == FEES.external + FEES.deploy + FEES.forward
    await chain.send_boc(signed.boc)
    assert (await chain.get_account_state(wallet.raw_address)).balance == 0
    assert (await chain.get_account_state(ALICE)).balance == 10 * TON - fee


@pytest.mark.parametrize("version", VERSIONS)
async def test_too_large_amount_with_ignore_errors_burns_seqno_and_fee_only(
    chain: SimulatedChain, vector_keys: KeyPair, version: WalletVersion
) -> None:
    wallet = await funded(chain, vector_keys, version)
    signed = transfer(wallet, vector_keys, order(amount=100 * TON))
    await chain.send_boc(signed.boc)
    assert await chain.get_seqno(wallet.raw_address) == 1
    assert (await chain.get_account_state(wallet.raw_address)).balance == (
        10 * TON - FEES.external - FEES.deploy
    )
    [tx, _] = await chain.get_transactions(wallet.raw_address, 10)
    assert tx.out_msgs == ()
    assert (await chain.get_account_state(ALICE)).status == "nonexist"


async def test_v4_without_ignore_errors_aborts_and_stays_replayable(
    chain: SimulatedChain, vector_keys: KeyPair
) -> None:
    wallet = await funded(chain, vector_keys, WalletVersion.V4R2)
    body = custom_body(wallet, vector_keys, seqno=0, valid_until=NOW + 60, mode=1, amount=100 * TON)
    boc = external(wallet, body, with_init=True)
    await chain.send_boc(boc)
    await chain.send_boc(boc)  # the drain the +2 rule exists for
    state = await chain.get_account_state(wallet.raw_address)
    assert state.status == "uninit"
    assert state.balance == 10 * TON - 2 * (FEES.external + FEES.deploy)
    [tx, *_] = await chain.get_transactions(wallet.raw_address, 10)
    assert (tx.aborted, tx.action_success) == (True, False)


async def test_v5_without_ignore_errors_fails_after_accepting(
    chain: SimulatedChain, vector_keys: KeyPair
) -> None:
    wallet = await funded(chain, vector_keys, WalletVersion.V5R1)
    body = custom_body(wallet, vector_keys, seqno=0, valid_until=NOW + 60, mode=1, amount=TON)
    await chain.send_boc(external(wallet, body, with_init=True))
    assert await chain.get_seqno(wallet.raw_address) == 1
    [tx, _] = await chain.get_transactions(wallet.raw_address, 10)
    assert (tx.compute_success, tx.compute_exit_code, tx.out_msgs) == (False, 137, ())


async def test_destroy_mode_deletes_an_emptied_wallet(
    chain: SimulatedChain, vector_keys: KeyPair
) -> None:
    wallet = await funded(chain, vector_keys, WalletVersion.V4R2)
    body = custom_body(
        wallet, vector_keys, seqno=0, valid_until=NOW + 60, mode=128 + 32 + 2, amount=0
    )
    await chain.send_boc(external(wallet, body, with_init=True))
    state = await chain.get_account_state(wallet.raw_address)
    assert (state.status, state.balance) == ("nonexist", 0)
    assert await chain.get_seqno(wallet.raw_address) == 0


async def test_mode_zero_takes_the_forward_fee_from_the_value(
    chain: SimulatedChain, vector_keys: KeyPair
) -> None:
    wallet = await funded(chain, vector_keys, WalletVersion.V4R2)
    body = custom_body(wallet, vector_keys, seqno=0, valid_until=NOW + 60, mode=2, amount=TON)
    await chain.send_boc(external(wallet, body, with_init=True))
    assert (await chain.get_account_state(ALICE)).balance == TON - FEES.forward


async def test_emulate_fee_skips_the_signature_and_changes_nothing(
    chain: SimulatedChain, vector_keys: KeyPair
) -> None:
    wallet = await funded(chain, vector_keys, WalletVersion.V5R1)
    unsigned = custom_body(wallet, other_keys(), seqno=0, valid_until=NOW + 60, mode=3, amount=TON)
    boc = external(wallet, unsigned, with_init=True)
    assert await chain.emulate_fee(boc) == FEES.external + FEES.deploy + FEES.forward
    assert (await chain.get_account_state(wallet.raw_address)).status == "uninit"
    assert await chain.emulate_fee(b"garbage") is None


async def test_paging_by_lt_and_hash(chain: SimulatedChain) -> None:
    for i in range(5):
        await chain.mint(ALICE, TON + i, comment=f"#{i}")
    first = await chain.get_transactions(ALICE, 2)
    assert [tx.in_msg.comment for tx in first if tx.in_msg] == ["#4", "#3"]
    rest = await chain.get_transactions(ALICE, 10, first[-1].prev_lt, first[-1].prev_hash)
    assert [tx.in_msg.comment for tx in rest if tx.in_msg] == ["#2", "#1", "#0"]
    assert await chain.get_transactions(ALICE, 0) == []
    with pytest.raises(ChainError, match="not in this account"):
        await chain.get_transactions(ALICE, 10, first[-1].prev_lt, b"\x01" * 32)


async def test_get_methods(chain: SimulatedChain, vector_keys: KeyPair) -> None:
    wallet = await funded(chain, vector_keys, WalletVersion.V4R2)
    with pytest.raises(GetMethodFailed):
        await chain.run_get_method(wallet.raw_address, "seqno", [])
    await chain.send_boc(transfer(wallet, vector_keys).boc)
    assert await chain.run_get_method(wallet.raw_address, "seqno", []) == [1]
    assert await chain.run_get_method(wallet.raw_address, "get_public_key", []) == [
        int.from_bytes(vector_keys.public_key, "big")
    ]
    assert await chain.run_get_method(wallet.raw_address, "get_subwallet_id", []) == [
        wallet.wallet_id
    ]
    with pytest.raises(GetMethodFailed, match="exit code 11"):
        await chain.run_get_method(wallet.raw_address, "get_plugin_list", [])


async def test_mint_and_earnings(chain: SimulatedChain) -> None:
    for bad in (0, -5, True):
        with pytest.raises(ValueError, match="positive"):
            await chain.mint(ALICE, bad)
    tx = await chain.credit_earnings(ALICE, 123, source=BOB, comment="earnings")
    assert tx.in_msg is not None
    assert (tx.in_msg.source, tx.in_msg.value, tx.in_msg.comment) == (BOB, 123, "earnings")
    assert await chain.get_server_time() == NOW
    assert chain.online.value is True


async def test_state_survives_restart_and_is_shared_between_instances(
    tmp_path: Path, vector_keys: KeyPair
) -> None:
    path = tmp_path / "devnet" / "chain.sqlite3"
    first, second = SimulatedChain(path, clock=Clock()), SimulatedChain(path, clock=Clock())
    await first.start()
    wallet = await funded(first, vector_keys, WalletVersion.V5R1)
    await second.send_boc(transfer(wallet, vector_keys).boc)
    assert await first.get_seqno(wallet.raw_address) == 1
    await first.aclose()
    await second.aclose()
    await second.aclose()
    reopened = SimulatedChain(path, clock=Clock())
    assert await reopened.get_seqno(wallet.raw_address) == 1
    assert len(await reopened.get_transactions(wallet.raw_address, 10)) == 2
    await reopened.aclose()


async def test_damaged_data_file_is_reported(tmp_path: Path) -> None:
    chain = SimulatedChain(tmp_path / "chain.sqlite3")
    await chain.mint(ALICE, TON)
    conn = chain._ledger._connection()
    conn.execute("UPDATE transactions SET payload = '{}'")
    with pytest.raises(ChainError, match="damaged"):
        await chain.get_transactions(ALICE, 1)
    await chain.aclose()


async def test_a_stuck_store_gives_chain_timeout() -> None:
    chain = SimulatedChain(timeout=0.05)
    release = threading.Event()
    chain._ledger._lock.acquire()
    try:
        with pytest.raises(ChainTimeout):
            await chain.get_account_state(ALICE)
    finally:
        chain._ledger._lock.release()
        release.set()
    await chain.aclose()


async def test_non_wallet_account_rejects_externals(
    chain: SimulatedChain, vector_keys: KeyPair
) -> None:
    wallet = WalletContract(WalletVersion.V4R2, TonNetwork.TESTNET, vector_keys.public_key)
    other_code = Builder().store_uint(0xC0DE, 16).end_cell()
    with chain._ledger.write() as ledger:
        ledger.put_account(
            AccountState(
                wallet.raw_address,
                Nanoton(TON),
                "active",
                bytes(other_code.to_boc()),
                bytes(Cell.empty().to_boc()),
            )
        )
    signed = transfer(wallet, vector_keys, seqno=1, deployed=True)
    with pytest.raises(MessageRejected, match="not a standard wallet"):
        await chain.send_boc(signed.boc)


async def test_tiny_bounce_is_kept_entirely_as_fees(
    chain: SimulatedChain, vector_keys: KeyPair
) -> None:
    wallet = await funded(chain, vector_keys, WalletVersion.V4R2)
    tiny = FEES.bounce // 2
    await chain.send_boc(transfer(wallet, vector_keys, order(BOB, tiny, bounce=True)).boc)
    txs = await chain.get_transactions(wallet.raw_address, 10)
    assert len(txs) == 2  # the send and the mint: nothing came back
    assert (await chain.get_account_state(BOB)).balance == 0
