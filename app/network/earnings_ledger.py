"""The earnings ledger: every billed job → its adjusted tokens × fee → the voucher that first
covers it → the payout that paid it, with totals per hour, day and all time.

Read-only views over the payments database. A job's ``position`` is the proxy's ``max_tokens``
right after it (``proxy.workerRequestPayment``), so it is *vouchered* once the held voucher
reaches that many tokens and *paid* once the worker contract has stored that many. Totals:
``earned`` = everything the proxies counted for us × fee, ``vouchered`` = held vouchers × fee,
``paid`` = what the owner's wallet received (the payouts' own transactions), so
``earned ≥ vouchered ≥ paid`` always holds.
"""

from __future__ import annotations

import csv
import enum
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.network.payment_store import (
    BilledJob,
    PaymentStore,
    Payout,
    PayoutKind,
    PayoutState,
    ProxyAccount,
)

CSV_COLUMNS = (
    "type",
    "time",
    "id",
    "proxy",
    "tokens",
    "amount_nanoton",
    "fee_nanoton",
    "state",
    "payout_id",
    "tx_hash",
)


class JobState(enum.StrEnum):
    SERVED = "served"  # billed by the proxy, not covered by a voucher yet
    VOUCHERED = "vouchered"  # a signed voucher covers it: it can be cashed out
    PAID = "paid"  # the worker contract paid it into the owner's wallet


@dataclass(frozen=True, slots=True)
class LedgerJob:
    job: BilledJob
    earned_nanoton: int
    state: JobState
    payout_id: int | None  # the payout that paid it


@dataclass(frozen=True, slots=True)
class Totals:
    earned_nanoton: int = 0
    vouchered_nanoton: int = 0
    paid_nanoton: int = 0
    fees_nanoton: int = 0

    @property
    def unpaid_nanoton(self) -> int:
        return self.earned_nanoton - self.paid_nanoton


@dataclass(frozen=True, slots=True)
class Ledger:
    accounts: tuple[ProxyAccount, ...]
    payouts: tuple[Payout, ...]
    jobs: tuple[LedgerJob, ...]
    totals: Totals

    def by_period(self, period: str) -> dict[str, int]:
        """Earned nanotons per UTC ``"hour"`` or ``"day"``, oldest first."""
        fmt = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d"}[period]
        out: dict[str, int] = defaultdict(int)
        for item in self.jobs:
            out[datetime.fromtimestamp(item.job.at, UTC).strftime(fmt)] += item.earned_nanoton
        return dict(sorted(out.items()))

    def to_json(self) -> dict[str, Any]:
        """The ``earnings --json`` document (docs/payments.md lists every field)."""
        t = self.totals
        return {
            "totals": {
                "earned_nanoton": t.earned_nanoton,
                "vouchered_nanoton": t.vouchered_nanoton,
                "paid_nanoton": t.paid_nanoton,
                "unpaid_nanoton": t.unpaid_nanoton,
                "fees_nanoton": t.fees_nanoton,
                "jobs": len(self.jobs),
            },
            "per_day": self.by_period("day"),
            "per_hour": self.by_period("hour"),
            "proxies": [
                {
                    "proxy": a.proxy_sc,
                    "worker_contract": a.worker_sc,
                    "owner": a.owner,
                    "fee_per_token_nanoton": a.fee_per_token,
                    "max_tokens": a.max_tokens,
                    "voucher_tokens": a.voucher_tokens,
                    "paid_tokens": a.paid_tokens,
                    "unpaid_nanoton": a.unpaid_nanoton,
                    "cashable_nanoton": a.cashable_nanoton,
                    "retired": a.retired,
                    "note": a.note,
                }
                for a in self.accounts
            ],
            "payouts": [
                {
                    "id": p.id,
                    "time": _iso(p.created_at),
                    "kind": p.kind.value,
                    "proxy": p.proxy_sc,
                    "tokens": p.tokens_to - p.tokens_from,
                    "tx_hash": p.tx_hash.hex(),
                    "amount_nanoton": p.amount_nanoton,
                    "fee_nanoton": p.fee_nanoton,
                    "state": p.state.value,
                    "error": p.error,
                }
                for p in self.payouts
            ],
        }

    def to_csv(self) -> str:
        """One row per job and one per payout (prompts and answers are never stored)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for item in self.jobs:
            job = item.job
            proxy = _proxy_of(self.accounts, job.worker_sc)
            writer.writerow(
                [
                    "job",
                    _iso(job.at),
                    job.request_hash,
                    proxy,
                    job.tokens,
                    item.earned_nanoton,
                    0,
                    item.state.value,
                    item.payout_id or "",
                    "",
                ]
            )
        for p in self.payouts:
            writer.writerow(
                [
                    "payout",
                    _iso(p.created_at),
                    p.id,
                    p.proxy_sc,
                    p.tokens_to - p.tokens_from,
                    p.amount_nanoton,
                    p.fee_nanoton,
                    p.state.value,
                    p.id,
                    p.tx_hash.hex(),
                ]
            )
        return buffer.getvalue()


async def read_ledger(store: PaymentStore) -> Ledger:
    """Everything in the payments database, resolved into states and totals."""
    accounts = tuple(await store.accounts())
    payouts = tuple(await store.payouts())
    billed = await store.billed()
    return build_ledger(accounts, payouts, billed)


def build_ledger(
    accounts: tuple[ProxyAccount, ...], payouts: tuple[Payout, ...], billed: list[BilledJob]
) -> Ledger:
    by_contract = {a.worker_sc: a for a in accounts}
    paid = [p for p in payouts if p.kind is PayoutKind.PAYOUT and p.state is PayoutState.PAID]
    jobs = []
    for job in billed:
        account = by_contract.get(job.worker_sc)
        voucher = account.voucher_tokens if account is not None else 0
        paid_to = account.paid_tokens if account is not None else 0
        payout = next(
            (p for p in paid if p.worker_sc == job.worker_sc and p.tokens_to >= job.position),
            None,
        )
        if job.position <= paid_to:
            state = JobState.PAID
        elif job.position <= voucher:
            state = JobState.VOUCHERED
        else:
            state = JobState.SERVED
        jobs.append(
            LedgerJob(
                job,
                job.tokens * job.fee_per_token,
                state,
                payout.id if payout is not None and state is JobState.PAID else None,
            )
        )
    totals = Totals(
        earned_nanoton=sum(a.earned_nanoton for a in accounts),
        vouchered_nanoton=sum(a.vouchered_nanoton for a in accounts),
        paid_nanoton=sum(p.amount_nanoton for p in paid),
        fees_nanoton=sum(p.fee_nanoton for p in payouts),
    )
    return Ledger(accounts, payouts, tuple(jobs), totals)


def _proxy_of(accounts: tuple[ProxyAccount, ...], worker_sc: str) -> str:
    return next((a.proxy_sc for a in accounts if a.worker_sc == worker_sc), "")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
