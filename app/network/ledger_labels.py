"""Which of the owner's wallet transfers are earnings: a cash-out's money reaches the owner's wallet
from the proxy contract (the worker contract asks it to pay, docs/payments.md), so an incoming
transfer from a proxy contract this worker has an account with is an earnings payout.

Pure; addresses are compared in raw form (``wc:hex``), whatever form each side was written in.
The Wallet page labels its history with it.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.network.payment_store import ProxyAccount
from app.network.proxy_payments import raw_or_empty
from app.wallet.history import Direction, HistoryEntry

EARNINGS_PAYOUT = "Earnings payout"


def payout_sources(accounts: Iterable[ProxyAccount]) -> frozenset[str]:
    """The raw addresses of the proxy contracts that pay this worker's cash-outs."""
    return frozenset(raw for raw in (raw_or_empty(a.proxy_sc) for a in accounts) if raw)


def is_earnings_payout(entry: HistoryEntry, sources: frozenset[str]) -> bool:
    """Whether ``entry`` is money received from one of ``sources`` (a proxy contract)."""
    if entry.direction is not Direction.INCOMING or not entry.counterparty:
        return False
    return raw_or_empty(entry.counterparty) in sources
