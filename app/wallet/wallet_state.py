"""The values ``WalletService`` publishes and returns: wallet summaries, state, receipts, errors."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.errors import UserFacingError
from app.core.money import Nanoton
from app.wallet.contracts import TonNetwork, WalletVersion
from app.wallet.node_wallet import NodeWalletStatus
from app.wallet.pending import PendingSend, SendOutcome, SendStatus
from app.wallet.withdrawals import WithdrawalPlan


class WalletLockedError(UserFacingError):
    """The command needs the wallet's keys and the wallet is locked."""

    def __init__(self) -> None:
        super().__init__("The wallet is locked.", hint="Unlock it with its password first.")


class NoWalletError(UserFacingError):
    """There is no wallet (or not the one asked for) on this network."""


@dataclass(frozen=True, slots=True)
class WalletSummary:
    """A wallet as listed: public facts only."""

    wallet_id: str
    address: str  # what users copy: non-bounceable, with this network's flag
    raw_address: str
    version: WalletVersion
    network: TonNetwork
    public_key: bytes


@dataclass(frozen=True, slots=True)
class PendingView:
    """An unconfirmed send, as the UI shows it (the BOC stays in the pending store)."""

    destination: str
    amount: Nanoton
    send_all: bool
    seqno: int
    valid_until: int

    @classmethod
    def of(cls, record: PendingSend) -> PendingView:
        return cls(
            record.destination, record.amount, record.send_all, record.seqno, record.valid_until
        )


@dataclass(frozen=True, slots=True)
class WalletState:
    """Everything the Wallet page shows; replaced as a whole on every change."""

    wallets: tuple[WalletSummary, ...] = ()
    active: WalletSummary | None = None
    locked: bool = True
    balance: Nanoton | None = None
    deployed: bool | None = None
    node_wallet: NodeWalletStatus | None = None
    offline: bool = False
    pending_send: PendingView | None = None
    last_refresh: int | None = None  # Unix time of the last successful refresh
    refresh_error: str | None = None


@dataclass(frozen=True, slots=True)
class WithdrawalReceipt:
    """What a withdrawal did: its status so far and how to find it on the chain."""

    status: SendStatus
    destination: str
    amount: Nanoton
    send_all: bool
    fee_estimate: Nanoton
    seqno: int
    valid_until: int
    message_hash: bytes
    normalized_hash: bytes
    message: str = ""

    @classmethod
    def of(cls, outcome: SendOutcome, plan: WithdrawalPlan) -> WithdrawalReceipt:
        record = outcome.record
        return cls(
            status=outcome.status,
            destination=record.destination,
            amount=plan.amount,
            send_all=record.send_all,
            fee_estimate=plan.fee_estimate,
            seqno=record.seqno,
            valid_until=record.valid_until,
            message_hash=record.message_hash,
            normalized_hash=record.normalized_hash,
            message=outcome.message,
        )
