"""What came of a cash-out, read from the chain: the worker contract's stored tokens, the payout
the owner received from the proxy contract, and what went back to the node wallet.

Everything is found by following the message chain forward from the node wallet's transaction
(logical times only grow along it), so a receipt names the exact transactions that paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pytoniq_core.boc.cell import Cell

from app.wallet.chain import ChainBackend, ChainTransaction, raw_address
from app.wallet.cocoon_contracts import read_worker_contract_tokens

_PAGE: Final = 32


@dataclass(frozen=True, slots=True)
class CashoutReceipt:
    """``stored_tokens`` is None while the worker contract is not deployed. ``paid_nanoton`` is
    what reached the owner from the proxy contract after the send (0 when nothing did yet)."""

    stored_tokens: int | None
    paid_nanoton: int
    owner_tx_hash: bytes
    refunded_nanoton: int
    bounced: bool
    worker_exit_code: int | None
    worker_processed: bool
    proxy_exit_code: int | None = None  # set when the proxy contract processed the request


async def read_receipt(
    chain: ChainBackend,
    sent: ChainTransaction,
    *,
    worker_sc: str,
    proxy_sc: str,
    owner: str,
) -> CashoutReceipt:
    """Follow ``sent`` (the node wallet's transaction) through the worker and proxy contracts."""
    node, worker, proxy = sent.account, raw_address(worker_sc), raw_address(proxy_sc)
    state = await chain.get_account_state(worker)
    stored = None
    if state.status == "active" and state.data is not None:
        stored = read_worker_contract_tokens(Cell.one_from_boc(state.data))
    worker_tx = _first_after(await chain.get_transactions(worker, _PAGE), sent.lt, {node})
    back = [
        tx
        for tx in await chain.get_transactions(node, _PAGE)
        if tx.lt > sent.lt and tx.in_msg is not None and tx.in_msg.source in (worker, proxy)
    ]
    paid = _first_after(await chain.get_transactions(raw_address(owner), _PAGE), sent.lt, {proxy})
    proxy_tx = _first_after(await chain.get_transactions(proxy, _PAGE), sent.lt, {worker})
    return CashoutReceipt(
        stored_tokens=stored,
        paid_nanoton=int(paid.in_msg.value) if paid is not None and paid.in_msg else 0,
        owner_tx_hash=paid.hash if paid is not None else b"",
        refunded_nanoton=sum(int(tx.in_msg.value) for tx in back if tx.in_msg is not None),
        bounced=any(tx.in_msg is not None and tx.in_msg.bounced for tx in back),
        worker_exit_code=worker_tx.compute_exit_code if worker_tx is not None else None,
        worker_processed=worker_tx is not None,
        proxy_exit_code=proxy_tx.compute_exit_code if proxy_tx is not None else None,
    )


def _first_after(
    transactions: list[ChainTransaction], lt: int, sources: set[str]
) -> ChainTransaction | None:
    """The oldest transaction after ``lt`` started by a message from one of ``sources``."""
    matching = [
        tx
        for tx in transactions
        if tx.lt > lt and tx.in_msg is not None and tx.in_msg.source in sources
    ]
    return min(matching, key=lambda tx: tx.lt) if matching else None
