"""The COCOON proxy contract's ops (``cocoon_proxy.fc``), as the simulated chain runs them.

Only the worker request (``0x4d725d2c``) is run in full: from the worker contract of the named
owner it adds the proxy part to the operator's balance, pays the worker part to the owner and
returns the rest to the excesses address. The ops the FunC proxy has that this model does not
run exit ``NOT_MODELLED`` (65535). The checks and their order are in ``docs/contracts.md`` §1–2.
"""

# pytoniq-core ships py.typed but leaves most methods unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

from dataclasses import replace
from typing import Final

from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.boc.slice import Slice
from pytoniq_core.tlb.account import StateInit

from app.wallet.cocoon_contracts import (
    OP_EXCESSES,
    OP_PAYOUT,
    OP_WORKER_PROXY_PAYOUT_REQUEST,
    OP_WORKER_PROXY_REQUEST,
    WORKER_STATE_NORMAL,
    ProxyStorage,
    proxy_storage_cell,
    read_proxy_storage,
    split_params,
)
from app.wallet.cocoon_vm import (
    MODE_CARRY_ALL,
    MODE_PAY_FEES_SEPARATELY,
    STORAGE_ESTIMATE,
    CocoonExit,
    Context,
    Decision,
    Send,
    Thrown,
    destination,
    end_parse,
    msg_addr,
    query_body,
    skip_bits,
    store_coins,
)

_PROXY_STATE_CLOSED: Final = 2
# Ops the FunC proxy handles that this model does not run (client requests, stake, payout of the
# operator's share, closing): they exit NOT_MODELLED rather than pretend to be unknown.
_PROXY_OPS_NOT_MODELLED: Final = frozenset(
    (0x65448FF4, 0x7610E6EB, 0x9713F187, 0x636A4391, 0xE511ABC7, 0xB51D5A01)
)


def run_proxy(ctx: Context) -> Decision:
    """``cocoon_proxy.fc`` ``recv_internal`` after what ``cocoon_execution.execute`` already
    accepted: the worker request in full, the op dispatch in the contract's order."""
    body = ctx.message.body
    assert body is not None  # noqa: S101 - execute() handles empty bodies
    cs = body.begin_parse()
    op = cs.load_uint(32)
    query_id = cs.load_uint(64) if op != 0 else 0
    storage = read_proxy_storage(ctx.data)
    if op == OP_WORKER_PROXY_REQUEST:
        return _worker_request(ctx, storage, cs, query_id)
    if op == 0:  # the owner's text commands
        action = cs.load_uint(8)
        end_parse(cs)
        if action in (ord("c"), ord("w")):
            raise Thrown(CocoonExit.NOT_MODELLED)
        raise Thrown(CocoonExit.UNKNOWN_TEXT_OP)
    if op in _PROXY_OPS_NOT_MODELLED:
        raise Thrown(CocoonExit.NOT_MODELLED)
    raise Thrown(CocoonExit.UNKNOWN_OP)


def _worker_address(
    worker_code: Cell | None, owner: str, proxy_sc: str, key: bytes, params: Cell
) -> str:
    """``calculate_cocoon_worker_address``: the owner's bits are stored as the message had them."""
    data = (
        Builder()
        .store_bits(owner)
        .store_address(Address(proxy_sc))
        .store_bytes(key)
        .store_uint(WORKER_STATE_NORMAL, 2)
        .store_uint(0, 64)
        .store_ref(params)
        .end_cell()
    )
    return f"0:{bytes(StateInit(code=worker_code, data=data).serialize().hash).hex()}"


def _worker_request(ctx: Context, storage: ProxyStorage, cs: Slice, query_id: int) -> Decision:
    owner = msg_addr(cs)
    skip_bits(
        cs, 2 + 64
    )  # the worker's state and total: reported for the proxy runner, not checked
    if not cs.load_bit():  # a register notice: accepted from anyone, nothing to do
        end_parse(cs)
        return Decision(reserve=0)
    request = cs.load_ref()
    end_parse(cs)
    without_code, worker_code = split_params(storage.params)
    expected = _worker_address(
        worker_code, owner, ctx.address, storage.proxy_public_key, without_code
    )
    if ctx.message.source != expected:
        raise Thrown(CocoonExit.CONTRACT_ADDRESS_MISMATCH)
    inner = request.begin_parse()
    if inner.load_uint(32) != OP_WORKER_PROXY_PAYOUT_REQUEST:
        raise Thrown(CocoonExit.UNKNOWN_OP)
    worker_part, proxy_part, excesses = inner.load_coins(), inner.load_coins(), msg_addr(inner)
    end_parse(inner)
    if storage.state == _PROXY_STATE_CLOSED:
        raise Thrown(CocoonExit.CLOSED)
    # The worker part comes out of the proxy's own balance: what it holds beyond it stays.
    keep = max(ctx.balance_before, STORAGE_ESTIMATE) - worker_part
    if keep < 0:
        raise Thrown(CocoonExit.RANGE_CHECK)  # raw_reserve of a negative amount
    accrued = replace(storage, balance=store_coins(storage.balance + proxy_part))
    return Decision(
        proxy_storage_cell(accrued),
        keep,
        (
            Send(
                destination(owner),
                worker_part,
                MODE_PAY_FEES_SEPARATELY,
                False,
                query_body(OP_PAYOUT, query_id),
            ),
            Send(
                destination(excesses),
                0,
                MODE_CARRY_ALL,
                False,
                query_body(OP_EXCESSES, query_id),
            ),
        ),
    )
