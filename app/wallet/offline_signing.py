"""Signing a transfer on a machine without network access (air-gapped signing).

The caller supplies what the chain would otherwise tell: the wallet's seqno, the expiry and
whether the destination is active (which decides the bounce flag). The result is the signed
external message and its hashes, to broadcast from another machine.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal

from app.core.errors import UserFacingError
from app.core.money import Nanoton, format_ton, parse_ton
from app.wallet.addresses import ParsedAddress, parse_address
from app.wallet.contracts import WalletContract
from app.wallet.mnemonic import KeyPair
from app.wallet.transfer import SignedTransfer, check_comment, send_order, sign_transfer

DestinationState = Literal["uninit", "active"]
_UINT32_MAX = 0xFFFF_FFFF


class OfflineSigningError(UserFacingError):
    """Offline signing parameters that cannot produce a valid message."""


@dataclass(frozen=True, slots=True)
class OfflineTransfer:
    """A transfer signed offline, with what is needed to broadcast and track it."""

    signed: SignedTransfer
    source: str
    destination: ParsedAddress
    destination_text: str
    amount: Nanoton
    send_all: bool
    bounce: bool
    comment: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "boc": base64.b64encode(self.signed.boc).decode(),
            "message_hash": self.signed.message_hash.hex(),
            "normalized_hash": self.signed.normalized_hash.hex(),
            "seqno": self.signed.seqno,
            "valid_until": self.signed.valid_until,
            "with_state_init": self.signed.with_state_init,
            "from": self.source,
            "to": self.destination_text,
            "amount_ton": None if self.send_all else format_ton(self.amount),
            "send_all": self.send_all,
            "bounce": self.bounce,
            "comment": self.comment,
            "warnings": [w.value for w in self.destination.warnings],
        }


def sign_offline(
    contract: WalletContract,
    keys: KeyPair,
    *,
    destination: str,
    amount: str | None,
    seqno: int,
    valid_until: int,
    destination_state: DestinationState,
    comment: str | None = None,
) -> OfflineTransfer:
    """Sign without touching the network. ``amount=None`` sends everything (mode 128+2).

    seqno 0 means "not deployed yet": the message then carries the wallet's state_init.
    """
    parsed = parse_address(destination, contract.network)
    comment = comment or None
    check_comment(comment)
    send_all = amount is None
    value = Nanoton(0) if amount is None else parse_ton(amount)
    if not 0 <= seqno <= _UINT32_MAX:
        raise OfflineSigningError("The seqno must be a whole number from 0 to 4294967295.")
    if not 0 < valid_until <= _UINT32_MAX:
        raise OfflineSigningError(
            "--valid-until must be a Unix time (seconds) in the future.",
            hint="For example the network time plus 300.",
        )
    bounce = parsed.bounce_to(destination_state == "active")
    order = send_order(parsed.address, value, send_all=send_all, bounce=bounce, comment=comment)
    signed = sign_transfer(
        contract, keys, order, seqno=seqno, valid_until=valid_until, deployed=seqno > 0
    )
    return OfflineTransfer(
        signed=signed,
        source=contract.display_address,
        destination=parsed,
        destination_text=destination.strip(),
        amount=value,
        send_all=send_all,
        bounce=bounce,
        comment=comment,
    )
