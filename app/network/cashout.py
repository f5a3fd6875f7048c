"""Cash-outs: the user's policy for turning held vouchers into TON in the owner's wallet, and the
crash-safe execution of each one (docs/protocol.md §6.4, docs/payments.md).

The node wallet re-wraps the best voucher with itself as ``excesses`` and sends it to the worker
contract with 0.5 TON for gas (as the reference worker), deploying the contract in the same
message the first time. Every step is written before it happens: a payout row (SIGNED) with the
exact BOC, then the wallet's pending-send record, then the broadcast. A payout is PAID only when
the worker contract stores the new total and the owner's transaction from the proxy contract is
found; the amount recorded is what that transaction carried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from pytoniq_core.boc.cell import Cell

from app.core.money import Nanoton, format_ton
from app.core.observable import Observable
from app.core.settings import PayoutSettings
from app.network.payment_store import (
    PaymentStore,
    Payout,
    PayoutKind,
    PayoutState,
    ProxyAccount,
)
from app.network.proxy_payments import PaymentBook, same_address
from app.wallet.cashout_receipts import CashoutReceipt, read_receipt
from app.wallet.chain import ChainError, ChainTransaction, raw_address
from app.wallet.cocoon_contracts import (
    WORKER_DEPLOY_VALUE,
    WORKER_PAYOUT_VALUE,
    CocoonRootParams,
    repack_voucher,
    worker_contract_state_init,
)
from app.wallet.node_sender import ContractMessage, NodeSender
from app.wallet.pending import SendStatus
from app.wallet.withdrawals import WithdrawalError

_log = logging.getLogger(__name__)

#: What one cash-out costs in network fees (about 0.0104 TON measured on the simulated chain).
FEE_ESTIMATE: Final = Nanoton(11_000_000)
#: A retired contract or an explicit "cash out everything" collects down to this (reference).
MIN_FINAL_CASHOUT: Final = Nanoton(10_000_000)
#: What the proxy contract must hold beyond the payout before we send a voucher: a voucher cashed
#: against a proxy contract that cannot pay is recorded by the worker contract all the same, and
#: its tokens could never be cashed again.
PROXY_MARGIN: Final = Nanoton(50_000_000)
#: How long a broadcast message may take to show its payout before it counts as failed.
SETTLE_TIMEOUT_S: Final = 600.0


class CashoutError(Exception):
    """A cash-out that cannot start now; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class CashoutStatus:
    """What the cash-out side is doing, for the dashboard and ``doctor``."""

    ready: bool = False  # a node wallet is unlocked to send with
    reason: str = ""  # why not, or why the last attempt did not go out
    last: Payout | None = None
    paid_nanoton: int = 0  # everything the payouts put into the owner's wallet
    fees_nanoton: int = 0


class CashoutService:
    """Runs the policy every ``check_every_s`` and answers on-demand requests (a service)."""

    def __init__(
        self,
        book: PaymentBook,
        *,
        sender: Callable[[], NodeSender | None],
        root: Callable[[], CocoonRootParams | None],
        policy: Callable[[], PayoutSettings],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._book = book
        self._store: PaymentStore = book.store
        self._sender = sender
        self._root = root
        self._policy = policy
        self._clock = clock
        self._lock = asyncio.Lock()
        self._loop: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.status: Observable[CashoutStatus] = Observable(CashoutStatus())

    async def start(self) -> None:
        payouts = await self._store.payouts()
        self._set(
            last=payouts[-1] if payouts else None,
            paid_nanoton=sum(p.amount_nanoton for p in payouts if p.state is PayoutState.PAID),
            fees_nanoton=sum(p.fee_nanoton for p in payouts),
        )
        self._stopping.clear()
        self._loop = asyncio.create_task(self._run(), name="cash-out policy")

    async def aclose(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            # The flag as well as the cancel: Python 3.11's wait_for can swallow a cancellation
            # that races its inner call's result, and the loop must still end at once.
            self._stopping.set()
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)

    def refresh(self) -> None:
        """Re-publish the status (the node wallet may have been unlocked or locked)."""
        self._set()

    # --- policy ---------------------------------------------------------------------------

    def due(self, account: ProxyAccount, *, final: bool = False) -> str | None:
        """Why ``account`` should be cashed out now (None: not yet)."""
        amount = account.cashable_nanoton
        policy = self._policy()
        root = self._root()
        retired = root is not None and account.params_version < root.params_version
        if account.voucher is None or amount <= 0:
            return None
        if final or retired:
            return "retired contract" if retired and not final else "on request"
        if not policy.auto_cashout or amount < policy.threshold_nanoton:
            return None
        if amount * policy.max_fee_percent < FEE_ESTIMATE * 100:
            return None
        return f"owed {format_ton(amount, trim=True, unit=True)} ≥ threshold"

    async def tick(self) -> list[Payout]:
        """One pass: settle what is open, then cash out every account that is due."""
        done = await self.settle_open()
        for account in self._book.accounts():
            if self.due(account) is not None:
                done += await self._try(account)
        return done

    async def cash_out(self, proxy: str | None = None) -> list[Payout]:
        """On demand (CLI, UI): every account (or the one of ``proxy``) with anything cashable,
        down to :data:`MIN_FINAL_CASHOUT`. Raises :class:`CashoutError` when nothing can go."""
        await self.settle_open()
        accounts = [
            a
            for a in self._book.accounts()
            if proxy is None or same_address(a.proxy_sc, proxy) or same_address(a.worker_sc, proxy)
        ]
        if proxy is not None and not accounts:
            raise CashoutError(f"No earnings from proxy {proxy} are known here.")
        due = [
            a for a in accounts if a.voucher is not None and a.cashable_nanoton >= MIN_FINAL_CASHOUT
        ]
        if not due:
            raise CashoutError("Nothing to cash out: no proxy owes at least 0.01 TON by voucher.")
        out: list[Payout] = []
        for account in due:
            out += await self._try(account, raise_errors=True)
        return out

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except (ChainError, CashoutError) as exc:
                self._set(reason=str(exc))
            except Exception:  # the policy loop must outlive one bad pass
                _log.exception("cash-out pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._policy().check_every_s)

    async def _try(self, account: ProxyAccount, *, raise_errors: bool = False) -> list[Payout]:
        try:
            return await self._cash_out(account)
        except (CashoutError, WithdrawalError, ChainError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            self._set(reason=message)
            _log.warning("cash-out from %s not sent: %s", account.proxy_sc, message)
            if raise_errors:
                raise CashoutError(message) from exc
            return []

    # --- execution ------------------------------------------------------------------------

    async def _cash_out(self, account: ProxyAccount) -> list[Payout]:
        """The deploy (first time) and the payout for ``account``: what was sent, settled as
        far as the chain allows yet."""
        async with self._lock:
            sender = self._ready_sender()
            root = self._root()
            if root is None:
                raise CashoutError("The network's root config is not loaded yet.")
            contract = await sender.account(raw_address(account.worker_sc))
            sent: list[Payout] = []
            if contract.status != "active":
                # As the reference worker: deploy the worker contract first (0.3 TON, empty
                # body, kept by the contract as its reserve), then send the voucher.
                deploy = await self._send(
                    sender,
                    account,
                    PayoutKind.DEPLOY,
                    ContractMessage(
                        destination=raw_address(account.worker_sc),
                        value=WORKER_DEPLOY_VALUE,
                        body=Cell.empty(),  # type: ignore[no-untyped-call]
                        state_init=worker_contract_state_init(
                            owner=account.owner,
                            proxy_sc=account.proxy_sc,
                            proxy_public_key=account.proxy_public_key,
                            root=root,
                        ),
                        bounce=False,
                    ),
                )
                sent.append(deploy)
                if deploy.state is not PayoutState.PAID:
                    return sent
                account = self._book.account(account.worker_sc) or account
            assert account.voucher is not None  # noqa: S101 - due() checked it
            owed = account.cashable_nanoton
            proxy = await sender.account(raw_address(account.proxy_sc))
            if proxy.balance < owed + PROXY_MARGIN:
                raise CashoutError(
                    f"The proxy contract holds {format_ton(proxy.balance, trim=True, unit=True)}, "
                    f"less than the {format_ton(owed, trim=True, unit=True)} it owes you; the "
                    "voucher is kept and cashed out once it can pay."
                )
            payout = await self._send(
                sender,
                account,
                PayoutKind.PAYOUT,
                ContractMessage(
                    destination=raw_address(account.worker_sc),
                    value=WORKER_PAYOUT_VALUE,
                    body=repack_voucher(account.voucher, excesses=sender.address),
                ),
            )
            return [*sent, payout]

    async def _send(
        self, sender: NodeSender, account: ProxyAccount, kind: PayoutKind, message: ContractMessage
    ) -> Payout:
        """Sign, record, broadcast and (if the chain is quick) settle one message."""
        if sender.open_send() is not None:
            raise CashoutError("The node wallet's previous message is not confirmed yet.")
        gas = await sender.balance()
        needed = message.value + FEE_ESTIMATE
        if gas < needed:
            raise CashoutError(
                f"The node wallet has {format_ton(gas, trim=True, unit=True)}; a cash-out needs "
                f"{format_ton(needed, trim=True, unit=True)} for gas (most of it comes back). "
                "Top it up on the Wallet page."
            )
        record = await sender.sign(message)
        payout = await self._store.add_payout(
            Payout(
                worker_sc=account.worker_sc,
                proxy_sc=account.proxy_sc,
                kind=kind,
                tokens_from=account.paid_tokens,
                tokens_to=account.voucher_tokens
                if kind is PayoutKind.PAYOUT
                else account.paid_tokens,
                expected_nanoton=(account.cashable_nanoton if kind is PayoutKind.PAYOUT else 0),
                wallet_address=sender.address,
                seqno=record.seqno,
                valid_until=record.valid_until,
                boc=record.boc,
                normalized_hash=record.normalized_hash,
            )
        )
        _log.info(
            "cash-out #%d (%s): tokens %d → %d of %s",
            payout.id,
            kind.value,
            payout.tokens_from,
            payout.tokens_to,
            account.proxy_sc,
        )
        outcome = await sender.submit(record)
        if outcome.status is SendStatus.PENDING and outcome.record.broadcasts:
            payout = await self._store.update_payout(replace(payout, state=PayoutState.BROADCAST))
        self._set(last=payout, reason="")
        return await self._settle(sender, payout)

    async def settle_open(self) -> list[Payout]:
        """Resolve every payout still open (at start, and before anything new is sent)."""
        open_payouts = await self._store.payouts(open_only=True)
        if not open_payouts:
            return []
        sender = self._sender()
        if sender is None:
            return []
        settled = []
        async with self._lock:
            with contextlib.suppress(WithdrawalError):
                await sender.reconcile()
            for payout in open_payouts:
                settled.append(await self._settle(sender, payout))
        return settled

    async def _settle(self, sender: NodeSender, payout: Payout) -> Payout:
        sent = await self._sent_transaction(sender, payout)
        if not isinstance(sent, ChainTransaction):
            return sent
        account = self._book.account(payout.worker_sc)
        receipt = await read_receipt(
            sender.chain,
            sent,
            worker_sc=payout.worker_sc,
            proxy_sc=payout.proxy_sc,
            owner=account.owner if account is not None else payout.wallet_address,
        )
        value = WORKER_PAYOUT_VALUE if payout.kind is PayoutKind.PAYOUT else WORKER_DEPLOY_VALUE
        fee = int(sent.total_fees) + value - receipt.refunded_nanoton
        if payout.kind is PayoutKind.DEPLOY:
            if receipt.stored_tokens is None:
                return await self._finish(
                    payout, PayoutState.FAILED, fee=fee, error="the contract was not deployed"
                )
            return await self._finish(
                payout, PayoutState.PAID, fee=fee, paid_tokens=receipt.stored_tokens
            )
        return await self._judge_payout(payout, receipt, fee)

    async def _sent_transaction(
        self, sender: NodeSender, payout: Payout
    ) -> ChainTransaction | Payout:
        """The node wallet's transaction that sent ``payout``, or the payout as it stands now
        (still pending, or finished because the message never went out)."""
        pending = sender.open_send()
        if pending is None or pending.normalized_hash != payout.normalized_hash:
            found = await self._find_sent(sender, payout)
            if found is None:
                return await self._finish(payout, PayoutState.NOT_SENT, error="never sent")
            return found
        outcome = await sender.check(pending)
        if outcome.status is SendStatus.PENDING:
            return payout
        if outcome.status is SendStatus.SENT and outcome.transaction is not None:
            return outcome.transaction
        state = (
            PayoutState.NOT_SENT if outcome.status is SendStatus.NOT_SENT else PayoutState.FAILED
        )
        return await self._finish(
            payout, state, error=outcome.message or "the node wallet did not send it"
        )

    async def _judge_payout(self, payout: Payout, receipt: CashoutReceipt, fee: int) -> Payout:
        age = self._clock() - payout.created_at
        # A refusal first: the contract may already store these tokens (then it says 1000).
        if receipt.bounced or (receipt.worker_processed and receipt.worker_exit_code):
            return await self._finish(
                payout,
                PayoutState.FAILED,
                fee=fee,
                error=f"the worker contract refused it (exit code {receipt.worker_exit_code}); "
                "the gas came back",
                paid_tokens=receipt.stored_tokens,
            )
        if receipt.proxy_exit_code and receipt.paid_nanoton <= 0:
            return await self._finish(
                payout,
                PayoutState.FAILED,
                fee=fee,
                error=f"the proxy contract could not pay (exit code {receipt.proxy_exit_code}); "
                "the worker contract recorded the tokens, so the proxy owes them now",
                paid_tokens=receipt.stored_tokens,
            )
        if receipt.stored_tokens is not None and receipt.stored_tokens >= payout.tokens_to:
            if receipt.paid_nanoton <= 0 and age < SETTLE_TIMEOUT_S:
                return payout  # the proxy contract's payout is still on its way
            return await self._finish(
                payout,
                PayoutState.PAID,
                amount=receipt.paid_nanoton,
                fee=fee,
                tx_hash=receipt.owner_tx_hash,
                paid_tokens=receipt.stored_tokens,
            )
        if age > SETTLE_TIMEOUT_S:
            return await self._finish(payout, PayoutState.FAILED, fee=fee, error="no payout seen")
        return payout

    async def _find_sent(self, sender: NodeSender, payout: Payout) -> ChainTransaction | None:
        for tx in await sender.transactions(sender.address):
            if tx.in_msg_normalized_hash == payout.normalized_hash:
                return tx
        return None

    async def _finish(
        self,
        payout: Payout,
        state: PayoutState,
        *,
        amount: int = 0,
        fee: int = 0,
        tx_hash: bytes = b"",
        error: str = "",
        paid_tokens: int | None = None,
    ) -> Payout:
        account = self._book.account(payout.worker_sc)
        if account is not None and paid_tokens is not None and paid_tokens > account.paid_tokens:
            account = replace(account, paid_tokens=paid_tokens, deployed=True)
            self._book.put(account)
        record = replace(
            payout,
            state=state,
            amount_nanoton=amount,
            fee_nanoton=fee,
            tx_hash=tx_hash,
            error=error,
        )
        record = await self._store.update_payout(record, account=account)
        _log.info(
            "cash-out #%d %s: %s",
            record.id,
            state.value,
            error or format_ton(amount, trim=True, unit=True),
        )
        status = self.status.value
        self._set(
            last=record,
            reason=error,
            paid_nanoton=status.paid_nanoton + (amount if state is PayoutState.PAID else 0),
            fees_nanoton=status.fees_nanoton + fee,
        )
        return record

    def _ready_sender(self) -> NodeSender:
        sender = self._sender()
        if sender is None:
            raise CashoutError(
                "The node wallet is locked or missing, so nothing can be cashed out.",
            )
        return sender

    def _set(self, **changes: object) -> None:
        current = self.status.value
        ready = self._sender() is not None
        self.status.set(replace(current, ready=ready, **changes))  # type: ignore[arg-type]
