"""Turning pytoniq-core ``Transaction`` objects (from liteservers) into ``ChainTransaction``s."""

# pytoniq-core ships py.typed but leaves most methods unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

from typing import Any

from app.core.money import Nanoton
from app.wallet.chain import (
    ChainError,
    ChainTransaction,
    InboundMessage,
    OutboundMessage,
    normalized_external_hash,
    raw_address,
    text_comment,
)


def decode_transaction(tx: Any, account: str) -> ChainTransaction:
    """Decode one transaction of ``account``; raises ``ChainError`` if it cannot be read."""
    try:
        return _decode(tx, account)
    except Exception as exc:  # pytoniq-core objects may lack fields on unusual transactions
        raise ChainError(f"A transaction of {account} could not be read.") from exc


def _decode(tx: Any, account: str) -> ChainTransaction:
    description = tx.description
    compute = getattr(description, "compute_ph", None)
    action = getattr(description, "action", None)
    compute_success: bool | None = None
    exit_code: int | None = None
    if compute is not None and compute.type_ == "vm":
        compute_success, exit_code = bool(compute.success), int(compute.exit_code)
    in_msg, normalized = _inbound(tx.in_msg)
    return ChainTransaction(
        account=account,
        hash=bytes(tx.cell.hash),
        lt=int(tx.lt),
        utime=int(tx.now),
        prev_lt=int(tx.prev_trans_lt),
        prev_hash=bytes(tx.prev_trans_hash),
        in_msg=in_msg,
        out_msgs=tuple(_outbound(message) for message in tx.out_msgs if message.is_internal),
        total_fees=Nanoton(int(tx.total_fees.grams)),
        compute_success=compute_success,
        compute_exit_code=exit_code,
        action_success=None if action is None else bool(action.success),
        aborted=bool(getattr(description, "aborted", False)),
        in_msg_normalized_hash=normalized,
    )


def _inbound(message: Any) -> tuple[InboundMessage | None, bytes | None]:
    if message is None:
        return None, None
    if message.is_external:
        inbound = InboundMessage(True, None, Nanoton(0), None, False, False)
        return inbound, normalized_external_hash(message.serialize())
    info = message.info
    inbound = InboundMessage(
        external=False,
        source=raw_address(info.src),
        value=Nanoton(int(info.value.grams)),
        comment=None if info.bounced else text_comment(message.body),
        bounced=bool(info.bounced),
        bounce=bool(info.bounce),
    )
    return inbound, None


def _outbound(message: Any) -> OutboundMessage:
    info = message.info
    return OutboundMessage(
        destination=raw_address(info.dest),
        value=Nanoton(int(info.value.grams)),
        comment=text_comment(message.body),
        bounce=bool(info.bounce),
    )
