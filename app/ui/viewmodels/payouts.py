"""``PayoutViewModel``: what the payments ledger says was earned, vouchered and paid, the Cash out
now command, the earning pipeline ("Why am I not earning?") and which wallet transfers are
earnings payouts.

Widgets never hold the cash-out service or the payment book: they observe the signals below and
await :meth:`PayoutViewModel.cash_out`, which never raises for an expected failure (the text to
show comes back instead).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from PySide6.QtCore import QObject, Signal

from app.bootstrap import Services
from app.core.errors import UserFacingError
from app.core.money import format_ton
from app.network.cashout import MIN_FINAL_CASHOUT, CashoutError
from app.network.earnings_ledger import build_ledger
from app.network.ledger_labels import is_earnings_payout, payout_sources
from app.network.payment_store import Payout, PayoutKind, PayoutState
from app.network.pipeline import Pipeline
from app.ui.viewmodels.earnings_history import EarningsHistory, read_history
from app.wallet.history import HistoryEntry

_DAY = 86_400


@dataclass(frozen=True, slots=True)
class EarningsView:
    """The ledger's running totals (nanotons) and whether Cash out now can run."""

    earned_nanoton: int = 0  # everything the proxies counted for this worker
    vouchered_nanoton: int = 0  # covered by signed vouchers (paid ones included)
    paid_nanoton: int = 0  # what the cash-outs put into the owner's wallet
    cashable_nanoton: int = 0  # vouchered and not paid yet: what a cash-out collects
    fees_nanoton: int = 0  # the network fees the cash-outs cost (from the node wallet)
    ready: bool = False  # a node wallet is unlocked to send the vouchers with
    reason: str = ""  # why the last cash-out attempt did not go out
    busy: bool = False  # a cash-out is running now

    @property
    def can_cash_out(self) -> bool:
        """Something is cashable and no cash-out runs. ``ready`` is not required: the service
        re-reads it only when it sends or settles, so it stays False after an unlock until
        then; a click with the node wallet locked says so on the panel's line instead."""
        return not self.busy and self.cashable_nanoton >= MIN_FINAL_CASHOUT

    @property
    def cash_out_hint(self) -> str:
        """Why Cash out now is disabled (the button's tooltip), or what it does."""
        if self.busy:
            return "A cash-out is running."
        if self.cashable_nanoton < MIN_FINAL_CASHOUT:
            return (
                f"Nothing to cash out yet: vouchers must cover at least "
                f"{format_ton(MIN_FINAL_CASHOUT, trim=True, unit=True)} not paid so far."
            )
        send = (
            f"Send the vouchers to the worker contracts now: "
            f"{format_ton(self.cashable_nanoton, trim=True, unit=True)} to your wallet."
        )
        if not self.ready:
            return f"{send} The node wallet must be unlocked (Wallet page): it pays the gas."
        return send


@dataclass(frozen=True, slots=True)
class CashoutResult:
    """What Cash out now did, in one line; ``ok`` False when nothing was paid or sent."""

    text: str
    ok: bool


class PayoutViewModel(QObject):
    """Adapts the cash-out service, the payment book and the earning pipeline to Qt signals."""

    earnings_changed = Signal(object)  # EarningsView
    pipeline_changed = Signal(object)  # Pipeline
    sources_changed = Signal()  # the proxy contracts that pay earnings changed

    def __init__(self, services: Services) -> None:
        super().__init__()
        self._services = services
        self._busy = False
        self._earnings = self._read_earnings()
        self._pipeline = services.pipeline()
        self._sources = payout_sources(services.payments.state.value.values())
        self._unsubscribers = [
            services.status.subscribe(lambda _: self._update()),
            services.cashout.status.subscribe(lambda _: self._update()),
            services.payments.state.subscribe(lambda _: self._update()),
            services.wallet.state.subscribe(lambda _: self._update()),
            services.settings.current.subscribe(lambda _: self._update()),
        ]

    def close(self) -> None:
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()

    # -- state ------------------------------------------------------------------------------

    @property
    def earnings(self) -> EarningsView:
        return self._earnings

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline

    def is_payout(self, entry: HistoryEntry) -> bool:
        """Whether a wallet transfer is money from a proxy contract this worker works for."""
        return is_earnings_payout(entry, self._sources)

    # -- commands ---------------------------------------------------------------------------

    async def cash_out(self) -> CashoutResult:
        """Cash out every held voucher now; the outcome (or why not) as a line to show."""
        self._busy = True
        self._update()
        try:
            payouts = await self._services.cashout.cash_out()
        except CashoutError as exc:
            return CashoutResult(str(exc), ok=False)
        except UserFacingError as exc:
            return CashoutResult(exc.describe(), ok=False)
        finally:
            self._busy = False
            self._update()
        return describe_payouts(payouts)

    async def earned_today(self) -> int | None:
        """Nanotons the proxies billed today (UTC day), from the payments ledger; None while
        the payments database cannot be read."""
        book = self._services.payments
        now = time.time()
        try:
            await book.flush()
            billed = await book.store.billed(since=now - now % _DAY)
        except UserFacingError:
            return None
        ledger = build_ledger(tuple(book.accounts()), (), billed)
        return ledger.by_period("day").get(datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d"), 0)

    async def earnings_history(self) -> EarningsHistory | None:
        """The last 24 h and 30 days of the ledger, the rate and the totals (None while the
        payments database cannot be read)."""
        return await read_history(self._services.payments)

    # -- internals --------------------------------------------------------------------------

    def _read_earnings(self) -> EarningsView:
        money = self._services.status.value.earnings
        cashout = self._services.cashout.status.value
        accounts = self._services.payments.state.value.values()
        return EarningsView(
            earned_nanoton=money.earned_nanoton,
            vouchered_nanoton=money.vouchered_nanoton,
            paid_nanoton=money.paid_nanoton,
            cashable_nanoton=sum(a.cashable_nanoton for a in accounts),
            fees_nanoton=cashout.fees_nanoton,
            ready=cashout.ready,
            reason=cashout.reason,
            busy=self._busy,
        )

    def _update(self) -> None:
        earnings = self._read_earnings()
        if earnings != self._earnings:
            self._earnings = earnings
            self.earnings_changed.emit(earnings)
        pipeline = self._services.pipeline()
        if pipeline != self._pipeline:
            self._pipeline = pipeline
            self.pipeline_changed.emit(pipeline)
        sources = payout_sources(self._services.payments.state.value.values())
        if sources != self._sources:
            self._sources = sources
            self.sources_changed.emit()


def describe_payouts(payouts: list[Payout]) -> CashoutResult:
    """One line for what a cash-out did: paid, on its way, or failed (with the chain's reason)."""
    paid = sum(
        p.amount_nanoton
        for p in payouts
        if p.kind is PayoutKind.PAYOUT and p.state is PayoutState.PAID
    )
    fees = sum(p.fee_nanoton for p in payouts)
    parts = []
    if paid:
        parts.append(f"Paid {format_ton(paid, trim=True, unit=True)} into your wallet")
    if any(p.state.open for p in payouts):
        parts.append("sent; waiting for the chain to confirm it (the figures update then)")
    parts += [
        f"cash-out #{p.id} {'failed' if p.state is PayoutState.FAILED else 'was not sent'}: "
        f"{p.error}"
        for p in payouts
        if p.state in (PayoutState.FAILED, PayoutState.NOT_SENT)
    ]
    if not parts:
        parts.append("Nothing was sent")
    text = "; ".join(parts)
    text = text[0].upper() + text[1:]
    if fees:
        text += f" (network fees {format_ton(fees, trim=True, unit=True)})"
    return CashoutResult(text + ".", ok=bool(paid) or any(p.state.open for p in payouts))
