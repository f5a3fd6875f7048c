"""Safe withdrawals: plan (checks, fee, warnings), sign + persist + broadcast, confirm, reconcile.

Rules (docs/wallet.md §5): strict address parsing; bounce only when the address asks for it
and the destination is active; mode 3, or 130 with value 0 for "send all"; ``valid_until`` =
server time + 300 s; a pending record is fsynced before the broadcast; a send is confirmed only
by a seqno change *and* the wallet transaction with the message's normalized hash that actually
sent money. Money is never sent twice: an unresolved message keeps its seqno, and any later
message for the same wallet is signed with that same seqno, so at most one of them can land.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import nacl.utils

from app.core.errors import UserFacingError
from app.core.money import Nanoton, format_ton, parse_ton
from app.core.settings import WalletSettings
from app.wallet.addresses import ParsedAddress, parse_address
from app.wallet.chain import (
    AccountState,
    ChainBackend,
    ChainError,
    ChainOffline,
    ChainTimeout,
    ChainTransaction,
    MessageRejected,
    wallet_seqno,
)
from app.wallet.contracts import WalletContract
from app.wallet.mnemonic import KeyPair
from app.wallet.pending import (
    PendingSend,
    PendingSendStore,
    SendOutcome,
    SendStatus,
    find_outcome,
)
from app.wallet.transfer import SendMode, check_comment, send_mode, send_order, sign_transfer
from app.wallet.withdrawal_warnings import (
    WarningKind,
    WithdrawalWarning,
    address_warnings,
    is_known,
    lookalike_of,
)

_log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FEE",
    "FEE_FACTOR_PERCENT",
    "TTL_S",
    "InsufficientBalanceError",
    "SendOutcome",
    "SendStatus",
    "WarningKind",
    "WithdrawalError",
    "WithdrawalPlan",
    "WithdrawalRequest",
    "WithdrawalWarning",
    "Withdrawals",
]

TTL_S = 300
DEFAULT_FEE = Nanoton(15_000_000)  # 0.015 TON when the backend cannot emulate
FEE_FACTOR_PERCENT = 105  # emulated fees × 1.05
_HISTORY_PAGE = 16
_HISTORY_MARGIN_S = 600  # clock differences between this machine and the liteserver
DEFAULT_LARGE_FIRST_SEND = Nanoton(WalletSettings().large_first_send_nanoton)


class WithdrawalError(UserFacingError):
    """A withdrawal that cannot go ahead as requested; nothing was sent."""


class InsufficientBalanceError(WithdrawalError):
    """The wallet cannot pay the amount plus the estimated fee."""


@dataclass(frozen=True, slots=True)
class WithdrawalRequest:
    """What the user typed. ``amount`` is ignored when ``send_all`` is set."""

    destination: str
    amount: str = ""
    send_all: bool = False
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class WithdrawalPlan:
    """A checked withdrawal, ready to show for confirmation (and then to execute)."""

    destination: ParsedAddress
    destination_text: str
    destination_active: bool
    amount: Nanoton  # what leaves the wallet besides fees (an estimate for "send all")
    send_all: bool
    bounce: bool
    comment: str | None
    fee_estimate: Nanoton
    balance: Nanoton
    seqno: int
    deployed: bool
    warnings: tuple[WithdrawalWarning, ...]

    @property
    def mode(self) -> SendMode:
        return send_mode(self.send_all)


class Withdrawals:
    """Withdrawals from one wallet over one chain backend."""

    def __init__(
        self,
        chain: ChainBackend,
        contract: WalletContract,
        wallet_id: str,
        pending: PendingSendStore,
        *,
        large_first_send: Nanoton = DEFAULT_LARGE_FIRST_SEND,
    ) -> None:
        self._chain = chain
        self._contract = contract
        self._wallet_id = wallet_id
        self._pending = pending
        self._large_first_send = large_first_send

    @property
    def wallet_address(self) -> str:
        return self._contract.raw_address

    # -- planning ---------------------------------------------------------------------------

    async def plan(
        self, request: WithdrawalRequest, *, known_destinations: Iterable[str] = ()
    ) -> WithdrawalPlan:
        """Check ``request`` against the chain; ``known_destinations`` are addresses from the
        wallet's history (any form), used for the look-alike and first-send warnings."""
        parsed = parse_address(request.destination, self._contract.network)
        comment = request.comment or None
        check_comment(comment)
        amount = Nanoton(0) if request.send_all else parse_ton(request.amount)
        if self._pending.get(self._wallet_id) is not None:
            raise WithdrawalError(
                "A previous send from this wallet is not confirmed yet.",
                hint="Wait until it is confirmed or expires (at most a few minutes).",
            )
        wallet = await self._chain.get_account_state(self.wallet_address)
        if wallet.status == "frozen":
            raise WithdrawalError("This wallet is frozen on the chain and cannot send.")
        dest_state = await self._chain.get_account_state(parsed.raw)
        active = dest_state.status == "active"
        bounce = parsed.bounce_to(active)
        seqno = wallet_seqno(wallet)
        deployed = wallet.status == "active"
        fee = await self._estimate_fee(
            parsed, amount, request.send_all, bounce, comment, seqno, deployed
        )
        amount = self._check_balance(wallet, amount, fee, request.send_all)
        known = list(known_destinations)
        warnings = address_warnings(parsed, active=active)
        if parsed.raw == self.wallet_address:
            warnings.append(WithdrawalWarning.of(WarningKind.OWN_ADDRESS))
        if (lookalike := lookalike_of(request.destination.strip(), parsed, known)) is not None:
            warnings.append(WithdrawalWarning.of(WarningKind.LOOKALIKE_ADDRESS, lookalike))
        if amount > self._large_first_send and not is_known(parsed, known):
            warnings.append(
                WithdrawalWarning.of(WarningKind.LARGE_FIRST_SEND, format_ton(amount, trim=True))
            )
        return WithdrawalPlan(
            destination=parsed,
            destination_text=request.destination.strip(),
            destination_active=active,
            amount=amount,
            send_all=request.send_all,
            bounce=bounce,
            comment=comment,
            fee_estimate=fee,
            balance=wallet.balance,
            seqno=seqno,
            deployed=deployed,
            warnings=tuple(warnings),
        )

    async def _estimate_fee(
        self,
        parsed: ParsedAddress,
        amount: Nanoton,
        send_all: bool,
        bounce: bool,
        comment: str | None,
        seqno: int,
        deployed: bool,
    ) -> Nanoton:
        # Emulation ignores signatures, so a throwaway key signs the estimate: planning never
        # needs the wallet unlocked.
        throwaway = KeyPair(self._contract.public_key, nacl.utils.random(64))
        order = send_order(
            parsed.address,
            max(amount, Nanoton(1)),
            send_all=send_all,
            bounce=bounce,
            comment=comment,
        )
        probe = sign_transfer(
            self._contract,
            throwaway,
            order,
            seqno=seqno,
            valid_until=0xFFFF_FFFF,
            deployed=deployed,
        )
        try:
            emulated = await self._chain.emulate_fee(probe.boc)
        except ChainError as exc:
            _log.info("fee emulation failed (%s); using the default estimate", type(exc).__name__)
            emulated = None
        if emulated is None:
            return DEFAULT_FEE
        return Nanoton(math.ceil(emulated * FEE_FACTOR_PERCENT / 100))

    @staticmethod
    def _check_balance(
        wallet: AccountState, amount: Nanoton, fee: Nanoton, send_all: bool
    ) -> Nanoton:
        if send_all:
            if wallet.balance <= fee:
                raise InsufficientBalanceError(
                    "Nothing would be left to send after the network fee.",
                    hint=f"Balance {format_ton(wallet.balance, trim=True, unit=True)}, fee about "
                    f"{format_ton(fee, trim=True, unit=True)}.",
                )
            return Nanoton(wallet.balance - fee)
        if wallet.balance < amount + fee:
            raise InsufficientBalanceError(
                "The balance is too low for this amount plus the network fee.",
                hint=f"Balance {format_ton(wallet.balance, trim=True, unit=True)}; needed "
                f"{format_ton(amount + fee, trim=True, unit=True)} (fee about "
                f"{format_ton(fee, trim=True, unit=True)}). Try 'Send all' instead.",
            )
        return amount

    # -- executing --------------------------------------------------------------------------

    async def execute(
        self, plan: WithdrawalPlan, keys: KeyPair, *, confirmed: Collection[WarningKind] = ()
    ) -> SendOutcome:
        """Sign, persist, broadcast. Returns SENT/FAILED only when already confirmed, otherwise
        PENDING (poll :meth:`check`); UNKNOWN when the broadcast's fate is unknown (offline)."""
        unconfirmed = {w.kind for w in plan.warnings} - set(confirmed)
        if unconfirmed:
            raise WithdrawalError(
                "Confirm the warnings before sending.",
                hint=", ".join(sorted(kind.value for kind in unconfirmed)),
            )
        wallet = await self._chain.get_account_state(self.wallet_address)
        if wallet_seqno(wallet) != plan.seqno or (wallet.status == "active") != plan.deployed:
            raise WithdrawalError(
                "The wallet changed since this send was prepared.",
                hint="Review the send again; nothing was sent.",
            )
        now = await self._chain.get_server_time()
        order = send_order(
            plan.destination.address,
            plan.amount,
            send_all=plan.send_all,
            bounce=plan.bounce,
            comment=plan.comment,
        )
        signed = sign_transfer(
            self._contract,
            keys,
            order,
            seqno=plan.seqno,
            valid_until=now + TTL_S,
            deployed=plan.deployed,
        )
        record = PendingSend(
            wallet_id=self._wallet_id,
            wallet_address=self.wallet_address,
            seqno=signed.seqno,
            valid_until=signed.valid_until,
            boc=signed.boc,
            message_hash=signed.message_hash,
            normalized_hash=signed.normalized_hash,
            destination=plan.destination_text,
            destination_raw=plan.destination.raw,
            amount=Nanoton(0) if plan.send_all else plan.amount,
            send_all=plan.send_all,
            comment=plan.comment,
            created_at=int(time.time()),
        )
        self._pending.add(record)  # durable before anything leaves this machine
        return await self._broadcast(record)

    async def send_signed(self, record: PendingSend) -> SendOutcome:
        """Persist, then broadcast, a transfer signed elsewhere (the node wallet's cash-outs);
        resolve it with :meth:`check` exactly like a withdrawal."""
        if self._pending.get(self._wallet_id) is not None:
            raise WithdrawalError(
                "A previous send from this wallet is not confirmed yet.",
                hint="Wait until it is confirmed or expires (at most a few minutes).",
            )
        self._pending.add(record)  # durable before anything leaves this machine
        return await self._broadcast(record)

    async def _broadcast(self, record: PendingSend) -> SendOutcome:
        try:
            await self._chain.send_boc(record.boc)
        except MessageRejected as exc:
            if exc.seqno_used:
                # Maybe this very message landed already; find out from the chain, never resend.
                outcome = await self.check(record)
                if outcome.status is SendStatus.PENDING:
                    return SendOutcome(SendStatus.PENDING, record, message=exc.message)
                return outcome
            self._pending.remove(record)
            raise WithdrawalError(exc.message, hint="Nothing was sent.") from exc
        except (ChainOffline, ChainTimeout) as exc:
            return SendOutcome(SendStatus.UNKNOWN, record, message=exc.message)
        updated = record.broadcasted()
        self._pending.replace(updated)
        return SendOutcome(SendStatus.PENDING, updated)

    # -- confirming -------------------------------------------------------------------------

    async def check(self, record: PendingSend) -> SendOutcome:
        """Resolve ``record`` if the chain allows it: SENT / FAILED / NOT_SENT remove the record;
        PENDING keeps it."""
        wallet = await self._chain.get_account_state(record.wallet_address)
        if wallet_seqno(wallet) > record.seqno:
            outcome = find_outcome(record, await self._transactions_since_signing(record))
        elif await self._chain.get_server_time() > record.valid_until:
            outcome = SendOutcome(SendStatus.NOT_SENT, record, message="The message expired.")
        else:
            return SendOutcome(SendStatus.PENDING, record)
        self._pending.remove(record)
        return outcome

    async def _transactions_since_signing(self, record: PendingSend) -> list[ChainTransaction]:
        """The wallet's transactions back to (a margin before) the moment ``record`` was signed,
        or up to the one carrying it. A busy wallet (many incoming payments) may have many; a
        fixed-size page could miss ours and wrongly report "not sent", inviting a double send.
        """
        cutoff = record.valid_until - TTL_S - _HISTORY_MARGIN_S
        found: list[ChainTransaction] = []
        from_lt: int | None = None
        from_hash: bytes | None = None
        while True:
            page = await self._chain.get_transactions(
                record.wallet_address, _HISTORY_PAGE, from_lt, from_hash
            )
            found.extend(page)
            if not page or any(
                tx.in_msg_normalized_hash == record.normalized_hash or tx.utime < cutoff
                for tx in page
            ):
                return found
            from_lt, from_hash = page[-1].prev_lt, page[-1].prev_hash
            if not from_lt:
                return found

    async def reconcile(self) -> SendOutcome | None:
        """On start-up: resolve this wallet's pending send, re-broadcasting the same BOC while
        it is still valid. None when there is nothing pending."""
        record = self._pending.get(self._wallet_id)
        if record is None:
            return None
        outcome = await self.check(record)
        if outcome.status is not SendStatus.PENDING:
            return outcome
        return await self._broadcast(record)
