"""The COCOON contracts' check order (cocoon_worker.fc / cocoon_proxy.fc), on the simulated chain
without the emulator: which check fails first decides the exit code."""

# pytoniq-core ships py.typed but leaves most methods unannotated.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

from collections.abc import AsyncIterator

import nacl.signing
import pytest
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

from app.core.money import Nanoton
from app.wallet.cocoon_contracts import (
    WORKER_PAYOUT_VALUE,
    repack_voucher,
)
from app.wallet.cocoon_vm import CocoonExit
from app.wallet.mnemonic import KeyPair
from app.wallet.transfer import TransferOrder
from tests.unit.wallet.cocoon_net import (
    FEES,
    OWNER,
    TOKENS,
    Net,
    make_net,
    truncated_voucher,
)


@pytest.fixture
async def net(vector_keys: KeyPair) -> AsyncIterator[Net]:
    built = await make_net(vector_keys)
    yield built
    await built.chain.aclose()


# ---- the contracts' check order (cocoon_worker.fc / cocoon_proxy.fc), without the emulator ----


def _envelope(voucher: bytes, excesses: str) -> Cell:
    """The voucher's op, query id, signature and payload around ``excesses`` as raw bits."""
    cs = Cell.one_from_boc(voucher).begin_parse()
    op, query_id = cs.load_uint(32), cs.load_uint(64)
    cs.load_address()
    signature, payload = cs.load_bytes(64), cs.load_ref()
    outer = Builder().store_uint(op, 32).store_uint(query_id, 64).store_bits(excesses)
    cell: Cell = outer.store_bytes(signature).store_ref(payload).end_cell()
    return cell


LOW = 100_000_000  # not more than 0.1 TON
CHECK_ORDER = {
    "the signature before the value": (
        lambda n: repack_voucher(
            n.voucher(TOKENS, key=nacl.signing.SigningKey(b"x" * 32)),
            excesses=n.wallet.raw_address,
        ),
        LOW,
        CocoonExit.BAD_SIGNATURE,
    ),
    "the layout before the value": (
        lambda n: Cell.one_from_boc(truncated_voucher(b"")),
        LOW,
        CocoonExit.CELL_UNDERFLOW,
    ),
    "the value before the payee": (
        lambda n: repack_voucher(n.voucher(TOKENS, payee=OWNER), excesses=n.wallet.raw_address),
        LOW,
        CocoonExit.LOW_MSG_VALUE,
    ),
    "an unknown op": (
        lambda n: Builder().store_uint(0x1234, 32).store_uint(1, 64).end_cell(),
        WORKER_PAYOUT_VALUE,
        CocoonExit.UNKNOWN_OP,
    ),
    "an anycast excesses address": (
        lambda n: _envelope(n.voucher(TOKENS), "101" + "00001" + "0" + "0" * 264),
        WORKER_PAYOUT_VALUE,
        CocoonExit.CELL_UNDERFLOW,
    ),
}


@pytest.mark.parametrize("case", list(CHECK_ORDER))
async def test_worker_checks_in_the_contracts_order(net: Net, case: str) -> None:
    make, value, exit_code = CHECK_ORDER[case]
    body = make(net)
    await net.send(TransferOrder(Address(net.worker), Nanoton(value), True, body=body))
    worker_tx = await net.last_tx(net.worker)
    assert (worker_tx.compute_exit_code, worker_tx.aborted) == (exit_code, True)
    assert await net.tokens() == 0


async def test_an_unsendable_excesses_address_fails_the_proxy_without_a_bounce(net: Net) -> None:
    """addr_none loads (the worker forwards it); the proxy's action phase fails and keeps the
    value: no payout, no bounce, the tokens stay stored."""
    proxy_before = await net.balance(net.proxy)
    body = _envelope(net.voucher(TOKENS), "00")
    await net.send(TransferOrder(Address(net.worker), WORKER_PAYOUT_VALUE, True, body=body))
    proxy_tx = await net.last_tx(net.proxy)
    assert (proxy_tx.compute_exit_code, proxy_tx.action_success, proxy_tx.aborted) == (
        0,
        False,
        True,
    )
    assert proxy_tx.out_msgs == ()
    forwarded = WORKER_PAYOUT_VALUE - FEES.worker_compute - FEES.forward
    assert await net.balance(net.proxy) == proxy_before + forwarded - FEES.proxy_compute
    assert await net.balance(OWNER) == 0
    assert await net.tokens() == TOKENS
