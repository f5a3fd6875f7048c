"""Building and signing wallet transfers (V5R1/V4R2) as external-message BOCs, plus their hashes.

Built here rather than with pytoniq's ``Wallet.transfer()``: the caller decides seqno, expiry,
bounce, send mode and whether to deploy (state_init), so online and offline signing are the same
function. Hashes follow TEP-467 (``chain.normalized_external_hash``) for tracking.
"""

# pytoniq-core ships py.typed but leaves most methods unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.account import StateInit
from pytoniq_core.tlb.block import CurrencyCollection
from pytoniq_core.tlb.transaction import ExternalMsgInfo, InternalMsgInfo, MessageAny

from app.core.errors import UserFacingError
from app.core.money import MAX_NANOTONS, Nanoton
from app.wallet.chain import normalized_external_hash
from app.wallet.contracts import WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair

MAX_COMMENT_CHARS: Final = 250
_UINT32_MAX: Final = 0xFFFF_FFFF
_TEXT_COMMENT_OP: Final = 0x0000_0000
_V5_SIGNED_EXTERNAL_OP: Final = 0x7369_676E  # "sign"
_V5_ACTION_SEND_MSG: Final = 0x0EC3_C86D


class SendMode(enum.IntEnum):
    """Send modes a wallet transfer may use; both carry +2 (IGNORE_ERRORS) so that a failing
    action can never make the same message replayable (which would drain fees)."""

    PAY_FEES_SEPARATELY = 3  # 1 (pay fees separately) + 2
    SEND_ALL = 130  # 128 (carry the whole remaining balance) + 2


class TransferError(UserFacingError):
    """A transfer that cannot be built as requested."""


@dataclass(frozen=True, slots=True)
class TransferOrder:
    """What to send. For :attr:`SendMode.SEND_ALL` the amount must be 0 (the contract sends
    everything left after fees).

    ``body`` replaces the comment with a contract message (a repacked voucher) and ``state_init``
    deploys the destination (a worker contract); a comment and a body cannot go together."""

    destination: Address
    amount: Nanoton
    bounce: bool
    mode: SendMode = SendMode.PAY_FEES_SEPARATELY
    comment: str | None = None
    body: Cell | None = None
    state_init: StateInit | None = None


def send_mode(send_all: bool) -> SendMode:
    return SendMode.SEND_ALL if send_all else SendMode.PAY_FEES_SEPARATELY


def send_order(
    destination: Address, amount: Nanoton, *, send_all: bool, bounce: bool, comment: str | None
) -> TransferOrder:
    """An order for ``amount`` (mode 3), or for everything left (mode 130, amount 0)."""
    return TransferOrder(
        destination, Nanoton(0) if send_all else amount, bounce, send_mode(send_all), comment
    )


@dataclass(frozen=True, slots=True)
class SignedTransfer:
    """A signed external message ready to broadcast, and what is needed to track it."""

    boc: bytes
    message_hash: bytes
    normalized_hash: bytes
    seqno: int
    valid_until: int
    with_state_init: bool


def check_comment(comment: str | None) -> None:
    """Raise :class:`TransferError` for a comment the app will not send."""
    if comment is None:
        return
    if len(comment) > MAX_COMMENT_CHARS:
        raise TransferError(
            f"The comment is too long ({len(comment)} characters; at most {MAX_COMMENT_CHARS}).",
            hint="Shorten the comment.",
        )
    if "\x00" in comment:
        raise TransferError("The comment contains a NUL character.")


def sign_transfer(
    contract: WalletContract,
    keys: KeyPair,
    order: TransferOrder,
    *,
    seqno: int,
    valid_until: int,
    deployed: bool,
) -> SignedTransfer:
    """Sign ``order`` from ``contract`` with ``keys``; pure and offline.

    ``deployed`` is the wallet's on-chain state: when it is not deployed yet the message carries
    the state_init (deploy and transfer in one message) and the seqno must be 0.
    """
    _check_order(order)
    if keys.public_key != contract.public_key:
        raise TransferError("The key does not belong to this wallet.")
    if not 0 <= seqno <= _UINT32_MAX:
        raise ValueError("seqno must be an unsigned 32-bit integer")
    if not 0 < valid_until <= _UINT32_MAX:
        raise ValueError("valid_until must be a positive unsigned 32-bit integer")
    if not deployed and seqno != 0:
        raise ValueError("an undeployed wallet has seqno 0")
    internal = _internal_message(order)
    if contract.version is WalletVersion.V4R2:
        body = _v4_body(contract.wallet_id, seqno, valid_until, order.mode, internal, keys)
    else:
        body = _v5_body(contract.wallet_id, seqno, valid_until, order.mode, internal, keys)
    external = MessageAny(
        info=ExternalMsgInfo(None, contract.address, 0),  # type: ignore[arg-type]
        init=None if deployed else contract.state_init,
        body=body,
    ).serialize()
    return SignedTransfer(
        boc=bytes(external.to_boc()),
        message_hash=bytes(external.hash),
        normalized_hash=normalized_external_hash(external),
        seqno=seqno,
        valid_until=valid_until,
        with_state_init=not deployed,
    )


def _check_order(order: TransferOrder) -> None:
    check_comment(order.comment)
    if order.comment is not None and order.body is not None:
        raise ValueError("a transfer carries either a comment or a body, not both")
    if order.mode is SendMode.SEND_ALL:
        if order.amount != 0:
            raise ValueError("a send-all transfer carries amount 0")
        return
    if order.amount <= 0:
        raise TransferError("The amount must be greater than zero.")
    if order.amount > MAX_NANOTONS:
        raise TransferError("That amount is larger than all the TON in existence.")


def _internal_message(order: TransferOrder) -> Cell:
    body = order.body if order.body is not None else Cell.empty()
    if order.comment:
        body = (
            Builder().store_uint(_TEXT_COMMENT_OP, 32).store_snake_string(order.comment).end_cell()
        )
    info = InternalMsgInfo(
        ihr_disabled=True,
        bounce=order.bounce,
        bounced=False,
        src=None,  # type: ignore[arg-type]
        dest=order.destination,
        value=CurrencyCollection(grams=int(order.amount)),
        ihr_fee=0,
        fwd_fee=0,
        created_lt=0,
        created_at=0,
    )
    cell: Cell = MessageAny(info=info, init=order.state_init, body=body).serialize()
    return cell


def _v4_body(
    wallet_id: int, seqno: int, valid_until: int, mode: int, internal: Cell, keys: KeyPair
) -> Cell:
    # wallet_id, valid_until, seqno, op 0 (simple send), then (mode, ^message) per message;
    # the signature comes first.
    signed = (
        Builder()
        .store_uint(wallet_id, 32)
        .store_uint(valid_until, 32)
        .store_uint(seqno, 32)
        .store_uint(0, 8)
        .store_uint(mode, 8)
        .store_ref(internal)
        .end_cell()
    )
    cell: Cell = Builder().store_bytes(keys.sign(signed.hash)).store_cell(signed).end_cell()
    return cell


def _v5_body(
    wallet_id: int, seqno: int, valid_until: int, mode: int, internal: Cell, keys: KeyPair
) -> Cell:
    # V5R1: op "sign", wallet_id, valid_until, seqno, then the out-action list (a linked list of
    # action_send_msg), no extended actions; the signature comes last.
    action = (
        Builder()
        .store_ref(Cell.empty())
        .store_uint(_V5_ACTION_SEND_MSG, 32)
        .store_uint(mode, 8)
        .store_ref(internal)
        .end_cell()
    )
    signed = (
        Builder()
        .store_uint(_V5_SIGNED_EXTERNAL_OP, 32)
        .store_uint(wallet_id, 32)
        .store_uint(valid_until, 32)
        .store_uint(seqno, 32)
        .store_uint(1, 1)
        .store_ref(action)
        .store_uint(0, 1)
        .end_cell()
    )
    cell: Cell = Builder().store_cell(signed).store_bytes(keys.sign(signed.hash)).end_cell()
    return cell


def boc_hashes(boc: bytes) -> tuple[bytes, bytes]:
    """(cell hash, normalized hash) of an external-message BOC."""
    cell = Cell.one_from_boc(boc)
    return bytes(cell.hash), normalized_external_hash(cell)
