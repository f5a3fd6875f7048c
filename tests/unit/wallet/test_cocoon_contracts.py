"""COCOON worker/proxy contracts: addresses proven against the reference capture, and the payout
chain (voucher → worker contract → proxy contract → owner) on the simulated chain."""

# pytoniq-core ships py.typed but leaves most methods unannotated.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import nacl.signing
import pytest
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

from app.core.money import Nanoton
from app.wallet.chain import raw_address
from app.wallet.cocoon_contracts import (
    WORKER_DEPLOY_VALUE,
    WORKER_PAYOUT_VALUE,
    CocoonContractError,
    proxy_contract_address,
    proxy_contract_state_init,
    proxy_params_cell,
    read_proxy_storage,
    repack_voucher,
    split_params,
    worker_contract_address,
    worker_contract_data,
    worker_contract_state_init,
    worker_params_cell,
)
from app.wallet.cocoon_vm import CocoonExit
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair
from app.wallet.simulated_chain import SimulatedChain
from app.wallet.transfer import TransferOrder, sign_transfer
from tests.unit.wallet.cocoon_net import (
    EXCESS,
    FEES,
    NOW,
    OWNER,
    PRICE,
    PROXY_OWNER,
    TOKENS,
    TON,
    WALLET_SEND_FEE,
    WORKER_FEE,
    Net,
    _config,
    _connected_to_proxy,
    make_net,
    trace_root,
    trace_voucher,
    truncated_voucher,
)

# ---- the reference capture: addresses the reference proxy computed -------------------------


def test_worker_contract_address_matches_the_reference_proxy() -> None:
    answer = _connected_to_proxy()
    params = answer["params"]
    address = worker_contract_address(
        owner=_config("worker-config.json")["owner_address"],
        proxy_sc=params["proxy_sc_address"],
        proxy_public_key=bytes.fromhex(params["proxy_public_key"]),
        root=trace_root(),
    )
    assert address == raw_address(answer["worker_sc_address"])
    # The reference proxy signs its vouchers out to the same contract.
    payload = Cell.one_from_boc(trace_voucher(800)).refs[0].begin_parse()
    payload.skip_bits(32 + 64 + 64)
    assert raw_address(payload.load_address()) == address


def test_proxy_contract_address_matches_the_reference_proxy() -> None:
    params = _connected_to_proxy()["params"]
    address = proxy_contract_address(
        owner=params["proxy_owner_address"],
        proxy_public_key=bytes.fromhex(params["proxy_public_key"]),
        root=trace_root(),
        root_address=_config("proxy-config.json")["root_contract_address"],
    )
    assert address == raw_address(params["proxy_sc_address"])


def test_proxy_params_hold_the_worker_code_and_the_worker_params() -> None:
    root = trace_root()
    without_code, worker_code = split_params(proxy_params_cell(root))
    assert without_code.hash == worker_params_cell(root).hash
    assert worker_code is not None
    assert worker_code.to_boc() == Cell.one_from_boc(root.worker_sc_code).to_boc()


def test_repack_keeps_payload_and_signature() -> None:
    voucher = trace_voucher(800)
    original = Cell.one_from_boc(voucher)
    repacked = repack_voucher(voucher, excesses=OWNER)
    assert repacked.refs[0].hash == original.refs[0].hash
    cs = repacked.begin_parse()
    head = original.begin_parse()
    assert (cs.load_uint(32), cs.load_uint(64)) == (head.load_uint(32), head.load_uint(64))
    assert raw_address(cs.load_address()) == OWNER
    head.load_address()
    assert cs.load_bytes(64) == head.load_bytes(64)
    excesses = raw_address(Cell.one_from_boc(voucher).begin_parse().skip_bits(96).load_address())
    assert repack_voucher(voucher, excesses=excesses).hash == original.hash
    with pytest.raises(CocoonContractError):
        repack_voucher(b"not a boc", excesses=OWNER)


def test_missing_contract_code_is_refused() -> None:
    root = dataclasses.replace(trace_root(), worker_sc_code=None)
    with pytest.raises(CocoonContractError, match="worker"):
        worker_contract_state_init(
            owner=OWNER, proxy_sc=OWNER, proxy_public_key=b"k" * 32, root=root
        )


def test_order_with_comment_and_body_is_refused(vector_keys: KeyPair) -> None:
    wallet = WalletContract(WalletVersion.V5R1, TonNetwork.TESTNET, vector_keys.public_key)
    order = TransferOrder(Address(OWNER), Nanoton(1), False, comment="x", body=Cell.empty())
    with pytest.raises(ValueError, match="comment or a body"):
        sign_transfer(wallet, vector_keys, order, seqno=0, valid_until=NOW + 60, deployed=False)


@pytest.fixture
async def net(vector_keys: KeyPair) -> AsyncIterator[Net]:
    built = await make_net(vector_keys)
    yield built
    await built.chain.aclose()


async def test_node_wallet_deploys_the_worker_contract(net: Net) -> None:
    state = await net.chain.get_account_state(net.worker)
    assert state.status == "active"
    assert state.code is not None
    assert state.data is not None
    assert Cell.one_from_boc(state.code).hash == Cell.one_from_boc(net.root.worker_sc_code).hash
    expected = worker_contract_data(
        owner=OWNER, proxy_sc=net.proxy, proxy_public_key=net.key_bytes, root=net.root
    )
    assert Cell.one_from_boc(state.data).hash == expected.hash
    assert state.balance == WORKER_DEPLOY_VALUE - FEES.deploy
    assert await net.tokens() == 0
    deploy = await net.last_tx(net.worker)
    assert deploy.total_fees == FEES.deploy
    assert deploy.in_msg is not None
    assert deploy.in_msg.source == net.wallet.raw_address


async def test_deploy_contract_is_idempotent(net: Net) -> None:
    init = proxy_contract_state_init(
        owner=PROXY_OWNER, proxy_public_key=net.key_bytes, root=net.root
    )
    before = await net.chain.get_account_state(net.proxy)
    assert await net.chain.deploy_contract(init, balance=7 * TON) == net.proxy
    assert await net.chain.get_account_state(net.proxy) == before
    assert len(await net.chain.get_transactions(net.proxy, 10)) == 1


async def _balances(net: Net) -> dict[str, int]:
    accounts = (net.wallet.raw_address, net.worker, net.proxy, OWNER)
    return {address: await net.balance(address) for address in accounts}


async def test_payout_pays_the_owner_exactly(net: Net) -> None:
    before = await _balances(net)
    lt_before = max([(await net.last_tx(address)).lt for address in before if address != OWNER])
    await net.cash(net.voucher(TOKENS))
    after = await _balances(net)
    assert after[OWNER] - before[OWNER] == TOKENS * WORKER_FEE
    assert after[net.proxy] - before[net.proxy] == -TOKENS * WORKER_FEE
    assert after[net.worker] == before[net.worker]  # its storage reserve stays put
    assert after[net.wallet.raw_address] - before[net.wallet.raw_address] == (
        EXCESS - WORKER_PAYOUT_VALUE - WALLET_SEND_FEE
    )
    assert await net.tokens() == TOKENS
    state = await net.chain.get_account_state(net.proxy)
    assert state.data is not None
    assert read_proxy_storage(Cell.one_from_boc(state.data)).balance == TOKENS * (
        PRICE - WORKER_FEE
    )
    # Every step is a transaction; the balances moved by exactly the fees they recorded.
    txs = [
        tx
        for address in after
        for tx in await net.chain.get_transactions(address, 10)
        if tx.lt > lt_before
    ]
    assert len(txs) == 5  # wallet external, worker, proxy, owner payout, wallet excess
    assert sum(before.values()) - sum(after.values()) == sum(tx.total_fees for tx in txs)
    assert all(not tx.aborted for tx in txs)
    proxy_tx = await net.last_tx(net.proxy)
    assert [(m.destination, m.value, m.bounce) for m in proxy_tx.out_msgs] == [
        (OWNER, TOKENS * WORKER_FEE, False),
        (net.wallet.raw_address, EXCESS, False),
    ]
    owner_tx = await net.last_tx(OWNER)
    assert owner_tx.in_msg is not None
    assert owner_tx.in_msg.source == net.proxy


async def test_second_voucher_pays_only_the_difference(net: Net) -> None:
    await net.cash(net.voucher(TOKENS))
    paid = await net.balance(OWNER)
    await net.cash(net.voucher(3 * TOKENS))
    assert await net.balance(OWNER) - paid == 2 * TOKENS * WORKER_FEE
    assert await net.tokens() == 3 * TOKENS


def _extra_bit(voucher: bytes) -> bytes:
    cell = Builder().store_cell(Cell.one_from_boc(voucher)).store_bit(1).end_cell()
    return bytes(cell.to_boc())


def _other_query_id(net: Net) -> bytes:
    payload = (
        Builder()
        .store_uint(0xA040AD28, 32)
        .store_uint(99, 64)
        .store_uint(TOKENS, 64)
        .store_address(Address(net.worker))
        .end_cell()
    )
    cell = (
        Builder()
        .store_uint(0xA040AD28, 32)
        .store_uint(98, 64)
        .store_address(Address(net.proxy))
        .store_bytes(net.proxy_key.sign(payload.hash).signature)
        .store_ref(payload)
        .end_cell()
    )
    return bytes(cell.to_boc())


BAD_VOUCHERS = {
    "another key": (
        lambda n: n.voucher(TOKENS, key=nacl.signing.SigningKey(b"x" * 32)),
        CocoonExit.BAD_SIGNATURE,
    ),
    "another worker contract": (
        lambda n: n.voucher(TOKENS, payee=OWNER),
        CocoonExit.EXPECTED_MY_ADDRESS,
    ),
    "zero tokens": (lambda n: n.voucher(0), CocoonExit.OLD_MESSAGE),
    "payload query id differs": (_other_query_id, CocoonExit.SIGNED_MSG_FORMAT_MISMATCH),
}


async def _assert_bounced(net: Net, wallet_before: int, exit_code: int) -> None:
    worker_tx = await net.last_tx(net.worker)
    assert (worker_tx.compute_exit_code, worker_tx.aborted) == (exit_code, True)
    refund = WORKER_PAYOUT_VALUE - FEES.worker_compute - FEES.bounce
    assert [(m.destination, m.value) for m in worker_tx.out_msgs] == [
        (net.wallet.raw_address, refund)
    ]
    back = await net.last_tx(net.wallet.raw_address)
    assert back.in_msg is not None
    assert back.in_msg.bounced
    assert await net.balance(net.wallet.raw_address) == (
        wallet_before - WORKER_PAYOUT_VALUE - WALLET_SEND_FEE + refund
    )
    assert await net.balance(OWNER) == 0


@pytest.mark.parametrize("case", list(BAD_VOUCHERS))
async def test_bad_voucher_bounces_and_changes_nothing(net: Net, case: str) -> None:
    make, exit_code = BAD_VOUCHERS[case]
    wallet_before, worker_before = (
        await net.balance(net.wallet.raw_address),
        await net.balance(net.worker),
    )
    data_before = (await net.chain.get_account_state(net.worker)).data
    await net.cash(make(net))
    await _assert_bounced(net, wallet_before, exit_code)
    assert (await net.chain.get_account_state(net.worker)).data == data_before
    assert await net.balance(net.worker) == worker_before


@pytest.mark.parametrize("tokens", [TOKENS, TOKENS - 1])
async def test_old_voucher_is_refused(net: Net, tokens: int) -> None:
    await net.cash(net.voucher(TOKENS))
    paid, wallet_before = await net.balance(OWNER), await net.balance(net.wallet.raw_address)
    await net.cash(net.voucher(tokens))
    worker_tx = await net.last_tx(net.worker)
    assert (worker_tx.compute_exit_code, worker_tx.aborted) == (CocoonExit.OLD_MESSAGE, True)
    assert await net.balance(OWNER) == paid
    assert await net.tokens() == TOKENS
    assert await net.balance(net.wallet.raw_address) == (
        wallet_before
        - WORKER_PAYOUT_VALUE
        - WALLET_SEND_FEE
        + WORKER_PAYOUT_VALUE
        - FEES.worker_compute
        - FEES.bounce
    )


@pytest.mark.parametrize("mangle", [truncated_voucher, _extra_bit], ids=["truncated", "extra bit"])
async def test_malformed_voucher_is_a_cell_underflow(net: Net, mangle: Any) -> None:
    wallet_before = await net.balance(net.wallet.raw_address)
    body = Cell.one_from_boc(mangle(net.voucher(TOKENS)))
    await net.send(TransferOrder(Address(net.worker), WORKER_PAYOUT_VALUE, True, body=body))
    await _assert_bounced(net, wallet_before, CocoonExit.CELL_UNDERFLOW)
    assert await net.tokens() == 0


async def test_too_little_value_is_refused(net: Net) -> None:
    await net.cash(net.voucher(TOKENS), value=100_000_000)  # the contract wants more than 0.1 TON
    worker_tx = await net.last_tx(net.worker)
    assert worker_tx.compute_exit_code == CocoonExit.LOW_MSG_VALUE
    assert [m.value for m in worker_tx.out_msgs] == [
        100_000_000 - FEES.worker_compute - FEES.bounce
    ]
    assert await net.tokens() == 0


async def test_empty_proxy_fails_the_payout_after_the_worker_stored_it(
    vector_keys: KeyPair,
) -> None:
    net = await make_net(vector_keys, proxy_balance=TON // 10)
    worker_before = await net.balance(net.worker)
    await net.cash(net.voucher(TOKENS))  # owes 1 TON, the proxy holds 0.1
    proxy_tx = await net.last_tx(net.proxy)
    assert (proxy_tx.compute_exit_code, proxy_tx.aborted) == (CocoonExit.RANGE_CHECK, True)
    assert await net.balance(net.proxy) == TON // 10
    assert await net.balance(OWNER) == 0
    # The worker contract stored the total before the proxy failed and ignores the bounce: the
    # delta is not paid on-chain, and the forwarded gas stays on the worker contract.
    assert await net.tokens() == TOKENS
    forwarded = WORKER_PAYOUT_VALUE - FEES.worker_compute - FEES.forward
    assert await net.balance(net.worker) == (
        worker_before + forwarded - FEES.proxy_compute - FEES.bounce
    )
    back = await net.last_tx(net.worker)
    assert back.in_msg is not None
    assert back.in_msg.bounced
    assert not back.aborted
    await net.chain.aclose()


async def test_voucher_to_an_undeployed_worker_contract_bounces(vector_keys: KeyPair) -> None:
    net = await make_net(vector_keys, deploy_worker=False)
    wallet_before = await net.balance(net.wallet.raw_address)
    await net.cash(net.voucher(TOKENS))
    worker_tx = await net.last_tx(net.worker)
    assert (worker_tx.compute_success, worker_tx.aborted) == (None, True)
    assert (await net.chain.get_account_state(net.worker)).status == "nonexist"
    first_send = FEES.external + FEES.deploy + FEES.forward  # this send also deploys the wallet
    assert await net.balance(net.wallet.raw_address) == (wallet_before - first_send - FEES.bounce)
    await net.chain.aclose()


async def test_proxy_refuses_a_request_from_anyone_but_the_worker_contract(net: Net) -> None:
    request = (
        Builder()
        .store_uint(0x08E7D036, 32)
        .store_coins(5 * TON)
        .store_coins(0)
        .store_address(Address(net.wallet.raw_address))
        .end_cell()
    )
    forged = (
        Builder()
        .store_uint(0x4D725D2C, 32)
        .store_uint(1, 64)
        .store_address(Address(OWNER))
        .store_uint(0, 2)
        .store_uint(10**9, 64)
        .store_maybe_ref(request)
        .end_cell()
    )
    await net.send(TransferOrder(Address(net.proxy), Nanoton(TON), True, body=forged))
    proxy_tx = await net.last_tx(net.proxy)
    assert proxy_tx.compute_exit_code == CocoonExit.CONTRACT_ADDRESS_MISMATCH
    assert await net.balance(OWNER) == 0


async def test_reference_voucher_pays_through_the_reference_contracts(vector_keys: KeyPair) -> None:
    """The captured voucher (signed by the reference proxy) cashed on contracts at the captured
    addresses: payout = 800 tokens × the fake-TON worker fee."""
    root = trace_root()
    params = _connected_to_proxy()["params"]
    key = bytes.fromhex(params["proxy_public_key"])
    chain = SimulatedChain(None, clock=lambda: NOW)
    chain.register_cocoon_codes(root)
    proxy = await chain.deploy_contract(
        proxy_contract_state_init(
            owner=params["proxy_owner_address"],
            proxy_public_key=key,
            root=root,
            root_address=_config("proxy-config.json")["root_contract_address"],
        ),
        balance=TON,
    )
    owner = _config("worker-config.json")["owner_address"]
    init = worker_contract_state_init(owner=owner, proxy_sc=proxy, proxy_public_key=key, root=root)
    wallet = WalletContract(WalletVersion.V5R1, TonNetwork.TESTNET, vector_keys.public_key)
    await chain.mint(wallet.raw_address, 10 * TON)
    net = Net(chain, vector_keys, wallet, nacl.signing.SigningKey(b"u" * 32), root, proxy, "")
    net.worker = raw_address(_connected_to_proxy()["worker_sc_address"])
    await net.send(TransferOrder(Address(net.worker), WORKER_DEPLOY_VALUE, False, state_init=init))
    await net.cash(trace_voucher(800))
    assert await net.balance(raw_address(owner)) == 800 * root.worker_fee_per_token
    assert await net.tokens() == 800
    await chain.aclose()
