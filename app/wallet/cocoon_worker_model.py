"""The COCOON worker contract's ops (``cocoon_worker.fc``), as the simulated chain runs them.

A voucher (``0xa040ad28``) or last payout (``0xf5f26a36``) stores the new token total and sends
the rest of the value to the proxy contract with the payout request; the owner's register
(``0x26ed7f65``) notifies the proxy contract. The checks and their order are in
``docs/contracts.md`` §1–2.
"""

# pytoniq-core ships py.typed but leaves most methods unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

from typing import Final

import nacl.exceptions
import nacl.signing
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.boc.slice import Slice

from app.wallet.cocoon_contracts import (
    OP_EXCESSES,
    OP_WORKER_LAST_PAYOUT_SIGNED,
    OP_WORKER_PAYOUT_SIGNED,
    OP_WORKER_PROXY_PAYOUT_REQUEST,
    OP_WORKER_PROXY_REQUEST,
    WORKER_STATE_CLOSED,
    WorkerStorage,
    params_fees,
    read_worker_storage,
    worker_data_cell,
)
from app.wallet.cocoon_vm import (
    COMMISSION_ESTIMATE,
    MODE_CARRY_ALL,
    MODE_PAY_FEES_SEPARATELY,
    STORAGE_ESTIMATE,
    CocoonExit,
    Context,
    Decision,
    Send,
    Thrown,
    addr_bits,
    destination,
    end_parse,
    msg_addr,
    query_body,
    store_coins,
)

OP_OWNER_WORKER_REGISTER: Final = 0x26ED7F65


def run_worker(ctx: Context) -> Decision:
    """``cocoon_worker.fc`` ``recv_internal`` after the empty, bounced and ``do_not_process``
    messages that ``cocoon_execution.execute`` already accepted, in the contract's order."""
    body = ctx.message.body
    assert body is not None  # noqa: S101 - execute() handles empty bodies
    cs = body.begin_parse()
    op, query_id = cs.load_uint(32), cs.load_uint(64)
    storage = read_worker_storage(ctx.data)
    if storage.state == WORKER_STATE_CLOSED:
        raise Thrown(CocoonExit.CLOSED)
    if op in (OP_WORKER_PAYOUT_SIGNED, OP_WORKER_LAST_PAYOUT_SIGNED):
        return _payout(ctx, storage, cs, op, query_id)
    if op == OP_OWNER_WORKER_REGISTER:
        return _register(ctx, storage, cs, query_id)
    raise Thrown(CocoonExit.UNKNOWN_OP)


def _proxy_request(
    query_id: int, owner: str, state: int, tokens: int, payload: Cell | None
) -> Cell:
    """``forward_message_to_proxy``'s body (op ``0x4d725d2c``)."""
    cell: Cell = (
        Builder()
        .store_uint(OP_WORKER_PROXY_REQUEST, 32)
        .store_uint(query_id, 64)
        .store_address(Address(owner))
        .store_uint(state, 2)
        .store_uint(tokens, 64)
        .store_maybe_ref(payload)
        .end_cell()
    )
    return cell


def _payout(ctx: Context, storage: WorkerStorage, cs: Slice, op: int, query_id: int) -> Decision:
    # signed_message_unpack_and_check_signature: the outer layout, the signature, then op and
    # query id (both loaded before either is compared).
    excesses = msg_addr(cs)
    signature, payload = bytes(cs.load_bytes(64)), cs.load_ref()
    end_parse(cs)
    try:
        nacl.signing.VerifyKey(storage.proxy_public_key).verify(bytes(payload.hash), signature)
    except (nacl.exceptions.BadSignatureError, ValueError):
        raise Thrown(CocoonExit.BAD_SIGNATURE) from None
    signed = payload.begin_parse()
    op_copy, query_id_copy = signed.load_uint(32), signed.load_uint(64)
    if op_copy != op or query_id_copy != query_id:
        raise Thrown(CocoonExit.SIGNED_MSG_FORMAT_MISMATCH)
    new_tokens, payee = signed.load_uint(64), msg_addr(signed)
    end_parse(signed)
    if ctx.message.value <= COMMISSION_ESTIMATE:
        raise Thrown(CocoonExit.LOW_MSG_VALUE)
    if payee != addr_bits(ctx.address):
        raise Thrown(CocoonExit.EXPECTED_MY_ADDRESS)
    price, worker_fee = params_fees(storage.params)
    last = op == OP_WORKER_LAST_PAYOUT_SIGNED
    if new_tokens < storage.tokens or (new_tokens == storage.tokens and not last):
        raise Thrown(CocoonExit.OLD_MESSAGE)
    delta = new_tokens - storage.tokens
    worker_part = store_coins(delta * worker_fee)
    proxy_part = store_coins(delta * (price - worker_fee))
    state = WORKER_STATE_CLOSED if last else storage.state
    request = (
        Builder()
        .store_uint(OP_WORKER_PROXY_PAYOUT_REQUEST, 32)
        .store_coins(worker_part)
        .store_coins(proxy_part)
        .store_bits(excesses)
        .end_cell()
    )
    notice = _proxy_request(query_id, storage.owner, state, new_tokens, request)
    # The contract keeps what it had before this message (its storage reserve) and forwards the
    # rest of the attached value to the proxy contract for the payout's gas.
    keep = (
        STORAGE_ESTIMATE
        if last
        else max(ctx.balance_before, COMMISSION_ESTIMATE + STORAGE_ESTIMATE)
    )
    data = worker_data_cell(
        owner=storage.owner,
        proxy_sc=storage.proxy_sc,
        proxy_public_key=storage.proxy_public_key,
        state=state,
        tokens=new_tokens,
        params=storage.params,
    )
    return Decision(data, keep, (Send(storage.proxy_sc, 0, MODE_CARRY_ALL, True, notice),))


def _register(ctx: Context, storage: WorkerStorage, cs: Slice, query_id: int) -> Decision:
    """Op ``0x26ed7f65`` from the owner: tell the proxy contract (1 nanoton, no payload) and send
    the rest of the value back to the excesses address."""
    if ctx.message.value <= COMMISSION_ESTIMATE:
        raise Thrown(CocoonExit.LOW_MSG_VALUE)
    if addr_bits(ctx.message.source) != addr_bits(storage.owner):
        raise Thrown(CocoonExit.EXPECTED_MESSAGE_FROM_OWNER)
    excesses = msg_addr(cs)
    end_parse(cs)
    notice = _proxy_request(query_id, storage.owner, storage.state, storage.tokens, None)
    keep = max(ctx.balance_before, COMMISSION_ESTIMATE + STORAGE_ESTIMATE)
    return Decision(
        None,
        keep,
        (
            Send(storage.proxy_sc, 1, MODE_PAY_FEES_SEPARATELY, True, notice),
            Send(
                destination(excesses),
                0,
                MODE_CARRY_ALL,
                False,
                query_body(OP_EXCESSES, query_id),
            ),
        ),
    )
