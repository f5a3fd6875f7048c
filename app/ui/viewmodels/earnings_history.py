"""``EarningsHistory``: what the payments ledger earned per UTC hour (last 24 h) and per UTC day
(last 30 days), zero-filled, with the rate over the last 60 minutes and today / this week / all
time totals, for the dashboard's earnings chart.

:func:`history_of` is pure (a ledger and a clock in, figures out); :func:`read_history` reads
the billed jobs of the last 30 days through the payment store (its own thread, never the GUI
thread's) and builds the ledger over them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from app.core.errors import UserFacingError
from app.core.money import format_ton
from app.network.earnings_ledger import Ledger, build_ledger
from app.network.proxy_payments import PaymentBook

HOUR = 3_600
DAY = 86_400
HOURS_SHOWN = 24
DAYS_SHOWN = 30
# The ledger's own bucket labels (``Ledger.by_period``), so a bucket here is one there.
_LABEL = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d"}
NO_RATE = "—"

Bucket = tuple[float, int]  # (UTC start of the hour or day, earned nanotons)


@dataclass(frozen=True, slots=True)
class EarningsHistory:
    """Nanotons earned, bucketed and totalled; ``rate_nanoton_per_hour`` is None before an hour
    of billed jobs (a minute's earnings × 60 would be a guess, not a rate)."""

    now: float
    hourly: tuple[Bucket, ...]  # HOURS_SHOWN buckets, oldest first, the current hour last
    daily: tuple[Bucket, ...]  # DAYS_SHOWN buckets, oldest first, today last
    rate_nanoton_per_hour: int | None
    today_nanoton: int
    week_nanoton: int  # since Monday 00:00 UTC
    all_time_nanoton: int

    @property
    def rate_text(self) -> str:
        rate = self.rate_nanoton_per_hour
        return NO_RATE if rate is None else f"{format_ton(rate, trim=True)} TON/h"


def history_of(ledger: Ledger, now: float) -> EarningsHistory:
    """The figures for ``now`` from ``ledger`` (its jobs may cover only the last 30 days: the
    all-time total is the proxies' tally, or the jobs' sum where that is larger)."""
    hour_start = now - now % HOUR
    day_start = now - now % DAY
    per_hour = ledger.by_period("hour")
    per_day = ledger.by_period("day")
    hourly = _buckets(per_hour, hour_start, HOUR, HOURS_SHOWN, _LABEL["hour"])
    daily = _buckets(per_day, day_start, DAY, DAYS_SHOWN, _LABEL["day"])
    weekday = datetime.fromtimestamp(now, UTC).weekday()  # Monday is 0
    week = sum(v for t, v in daily[len(daily) - 1 - weekday :])
    times = [item.job.at for item in ledger.jobs]
    rate = None
    if times and min(times) <= now - HOUR:
        rate = sum(i.earned_nanoton for i in ledger.jobs if now - HOUR < i.job.at <= now)
    jobs_sum = sum(item.earned_nanoton for item in ledger.jobs)
    return EarningsHistory(
        now=now,
        hourly=hourly,
        daily=daily,
        rate_nanoton_per_hour=rate,
        today_nanoton=daily[-1][1],
        week_nanoton=week,
        all_time_nanoton=max(ledger.totals.earned_nanoton, jobs_sum),
    )


async def read_history(book: PaymentBook, now: float | None = None) -> EarningsHistory | None:
    """The last 30 days of the payments ledger as figures; None while it cannot be read."""
    now = time.time() if now is None else now
    since = now - now % DAY - (DAYS_SHOWN - 1) * DAY
    try:
        await book.flush()
        billed = await book.store.billed(since=since)
    except UserFacingError:
        return None
    return history_of(build_ledger(tuple(book.accounts()), (), billed), now)


def _buckets(
    earned: dict[str, int], last_start: float, size: int, count: int, fmt: str
) -> tuple[Bucket, ...]:
    starts = [last_start - size * back for back in range(count - 1, -1, -1)]
    return tuple(
        (start, earned.get(datetime.fromtimestamp(start, UTC).strftime(fmt), 0)) for start in starts
    )
