"""What proxies owe this worker: one :class:`ProxyPayments` per proxy link, all kept by one
:class:`PaymentBook` that persists them in the network's :class:`PaymentStore`.

A voucher is taken only when its layout, the proxy's signature (the key from the handshake), the
payee (the worker contract the handshake named, which must be the one our owner address derives
to) and a non-decreasing amount all check out (docs/protocol.md §6.2). Rejections are logged with
the reason and never stop serving. Updates reach memory (and the UI) at once and the database
within ``flush_every`` seconds, several per transaction: a proxy re-sends its current voucher at
every handshake, so a crash in between loses nothing that cannot be fetched again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from app.core.money import format_ton
from app.core.observable import Observable
from app.network.jobs import hash_request_id
from app.network.payment_store import BilledJob, PaymentStore, ProxyAccount
from app.network.tl import TLObject
from app.network.vouchers import Voucher, VoucherError, verify_voucher
from app.wallet.chain import raw_address

_log = logging.getLogger(__name__)

#: Derives the worker-contract address our owner has with a proxy (None: cannot check here).
WorkerContractOf = Callable[[str, bytes, str], str | None]


class VoucherRegressionError(Exception):
    """The proxy reported less than it did before (the reference re-handshakes in that case)."""


class ProxyRefusedError(Exception):
    """We do not work for this proxy (wrong worker contract, or it lost our earnings)."""


@dataclass(frozen=True, slots=True)
class AccountTerms:
    """The root config's terms for new accounts: pay per adjusted token, params generation."""

    fee_per_token: int
    params_version: int


class PaymentBook:
    """Every proxy account of one network, in memory and in SQLite (``start``/``aclose``).

    ``PaymentBook.in_memory()`` gives one without a database (tests, tools); start it too.
    """

    def __init__(
        self,
        store: PaymentStore,
        *,
        terms: AccountTerms | None = None,
        worker_contract_of: WorkerContractOf | None = None,
        flush_every: float = 0.5,
    ) -> None:
        self.store = store
        self._terms = terms or AccountTerms(fee_per_token=0, params_version=0)
        self._worker_contract_of = worker_contract_of
        self._cap = 0
        self._flush_every = flush_every
        self._accounts: dict[str, ProxyAccount] = {}
        self._dirty: set[str] = set()
        self._billed: list[BilledJob] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self.state: Observable[Mapping[str, ProxyAccount]] = Observable(MappingProxyType({}))

    @classmethod
    def in_memory(cls, *, fee_per_token: int = 0, params_version: int = 0) -> PaymentBook:
        terms = AccountTerms(fee_per_token=fee_per_token, params_version=params_version)
        return cls(PaymentStore(None), terms=terms)

    def configure(
        self,
        terms: AccountTerms,
        worker_contract_of: WorkerContractOf | None = None,
        *,
        exposure_cap_nanoton: int = 0,
    ) -> None:
        """The root config's terms for accounts opened from now on, how to check the worker
        contract a proxy names, and the most a proxy may owe (0: no cap); each earning session
        sets them."""
        self._terms = terms
        self._worker_contract_of = worker_contract_of
        self._cap = exposure_cap_nanoton

    def over_cap(self, account: ProxyAccount) -> str:
        """Why ``account``'s proxy should get no new work (it owes more than the cap), or ""."""
        owed = account.unpaid_nanoton
        if self._cap <= 0 or owed <= self._cap:
            return ""
        return (
            f"Not taking new work: this proxy owes you {format_ton(owed, trim=True, unit=True)}, "
            f"more than your limit of {format_ton(self._cap, trim=True, unit=True)} (Settings → "
            "Payouts). It resumes once a cash-out lands."
        )

    @property
    def terms(self) -> AccountTerms:
        return self._terms

    async def start(self) -> None:
        """Open the store (if not yet open) and load every account."""
        await self.store.start()
        for account in await self.store.accounts():
            self._accounts[account.worker_sc] = account
        self._publish()
        self._closing = False
        self._writer = asyncio.create_task(self._write_loop(), name="payment-book-writer")

    async def aclose(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            # The flag too: Python 3.11's wait_for may swallow a cancel racing a write's result.
            self._closing = True
            self._wake.set()
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        await self.flush()
        await self.store.aclose()

    # --- what sessions and the cash-out use ------------------------------------------------

    def account(self, worker_sc: str) -> ProxyAccount | None:
        return self._accounts.get(worker_sc)

    def accounts(self) -> list[ProxyAccount]:
        return list(self._accounts.values())

    def for_proxy(self, proxy_sc: str) -> ProxyAccount | None:
        """The newest account with this proxy contract (the one a link would use now)."""
        matching = [a for a in self._accounts.values() if same_address(a.proxy_sc, proxy_sc)]
        return max(matching, key=lambda a: a.first_seen) if matching else None

    def open(
        self, *, proxy_sc: str, proxy_public_key: bytes, worker_sc: str, owner: str
    ) -> ProxyPayments:
        """The account for this handshake's proxy; raises :class:`ProxyRefusedError` when the
        worker contract it names is not the one our owner address has with it."""
        expected = (
            self._worker_contract_of(proxy_sc, proxy_public_key, owner)
            if self._worker_contract_of is not None
            else None
        )
        if expected is not None and not same_address(expected, worker_sc):
            raise ProxyRefusedError(
                f"the proxy names worker contract {worker_sc}, but {owner} has {expected} with "
                "it: its vouchers would not pay you"
            )
        current = self._accounts.get(worker_sc)
        if current is None:
            terms = self._terms
            now = time.time()
            current = ProxyAccount(
                worker_sc=worker_sc,
                proxy_sc=proxy_sc,
                proxy_public_key=proxy_public_key,
                owner=owner,
                fee_per_token=terms.fee_per_token,
                params_version=terms.params_version,
                first_seen=now,
                updated_at=now,
            )
            self.put(current)
        elif current.proxy_public_key != proxy_public_key:  # pragma: no cover - in the address
            raise ProxyRefusedError("the proxy's key changed but its worker contract did not")
        return ProxyPayments(self, worker_sc)

    def put(self, account: ProxyAccount) -> None:
        """Replace an account (memory now, disk within ``flush_every``)."""
        self._accounts[account.worker_sc] = account
        self._dirty.add(account.worker_sc)
        self._publish()
        self._wake.set()

    def add_billed(self, job: BilledJob) -> None:
        self._billed.append(job)
        self._wake.set()

    async def flush(self) -> None:
        """Write every pending change now."""
        dirty, self._dirty = self._dirty, set()
        billed, self._billed = self._billed, []
        try:
            await self.store.save_accounts(self._accounts[key] for key in dirty)
            await self.store.save_billed(billed)
        except BaseException:
            # Keep them for the next try (a full disk may clear); money rows are never dropped.
            self._dirty |= dirty
            self._billed = billed + self._billed
            raise

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            if self._closing:
                return
            await asyncio.sleep(self._flush_every)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # the writer must outlive a bad moment of the disk
                _log.error("could not save payment records (will retry): %s", exc)

    def _publish(self) -> None:
        self.state.set(MappingProxyType(dict(self._accounts)))


class ProxyPayments:
    """One proxy link's view of its account: the numbers to compare, vouchers, billed jobs."""

    def __init__(self, book: PaymentBook, worker_sc: str) -> None:
        self._book = book
        self.worker_sc = worker_sc
        # The proxy repeats one voucher in every runQueryEx and status until its next on-chain
        # commit: verify each distinct BOC once.
        self._last: Voucher | None = None

    @property
    def account(self) -> ProxyAccount:
        account = self._book.account(self.worker_sc)
        if account is None:  # pragma: no cover - accounts are never removed
            raise KeyError(self.worker_sc)
        return account

    def check_handshake(self, voucher_tokens: int | None, db_tokens: int) -> None:
        """Refuse a proxy whose signed total (None: not known) or database count fell below
        what it told us before: it lost its records, and work for it would stay unpaid until it
        caught up again."""
        held = self.account.voucher_tokens
        signed_less = voucher_tokens is not None and voucher_tokens < held
        if signed_less or db_tokens < self.account.db_tokens:
            voucher_tokens = db_tokens if voucher_tokens is None else voucher_tokens
            note = (
                f"The proxy now reports {voucher_tokens} tokens but signed {held} before: it may "
                "have lost its records. Not taking its work; the voucher held can still be "
                "cashed out."
            )
            self._book.put(replace(self.account, note=note, updated_at=time.time()))
            raise ProxyRefusedError(note)

    def apply(
        self,
        signed: TLObject,
        db_tokens: int | None,
        max_tokens: int | None,
        *,
        strict: bool,
    ) -> Voucher | None:
        """Take a report: the voucher if it verifies and is higher, counters if higher.

        A lower value raises :class:`VoucherRegressionError` when ``strict``
        (``workerRequestPayment``, as the reference); otherwise it is simply not taken.
        """
        account = self.account
        voucher = self._voucher(signed, account) if signed.name == "proxy.signedPayment" else None
        changes: dict[str, object] = {}
        if voucher is not None:
            if voucher.tokens < account.voucher_tokens and strict:
                raise VoucherRegressionError(
                    f"voucher for {voucher.tokens} tokens < {account.voucher_tokens} held"
                )
            if voucher.tokens > account.voucher_tokens or account.voucher is None:
                changes.update(voucher=voucher.boc, voucher_tokens=voucher.tokens)
        for name, value in (("db_tokens", db_tokens), ("max_tokens", max_tokens)):
            if value is None:
                continue
            held = getattr(account, name)
            if value < held and strict:
                raise VoucherRegressionError(f"{name} {value} < {held} known")
            if value > held:
                changes[name] = value
        if changes:
            self._book.put(replace(account, updated_at=time.time(), note="", **changes))  # type: ignore[arg-type]
        return voucher

    def billed(self, request_id: bytes, tokens: int, position: int) -> None:
        """``proxy.workerRequestPayment``: the proxy billed ``tokens`` for this request."""
        self._book.add_billed(
            BilledJob(
                request_hash=hash_request_id(request_id),
                worker_sc=self.worker_sc,
                tokens=tokens,
                position=position,
                fee_per_token=self.account.fee_per_token,
                at=time.time(),
            )
        )

    def _voucher(self, signed: TLObject, account: ProxyAccount) -> Voucher | None:
        boc = signed["data"]
        last = self._last
        if last is not None and last.boc == boc:
            return last
        try:
            voucher = verify_voucher(
                boc, proxy_public_key=account.proxy_public_key, worker_sc_address=self.worker_sc
            )
        except VoucherError as exc:
            _log.warning("proxy %s: rejected a voucher: %s", account.proxy_sc, exc)
            return None
        self._last = voucher
        return voucher


def raw_or_empty(address: str) -> str:
    """``address`` in raw form (``wc:hex``), or "" when it is not an address at all."""
    try:
        return raw_address(address)
    except Exception:  # pytoniq raises its own types (and ValueError) for anything unreadable
        return ""


def same_address(a: str, b: str) -> bool:
    """Whether two TON addresses (any form) name the same account."""
    left = raw_or_empty(a)
    return bool(left) and left == raw_or_empty(b)
