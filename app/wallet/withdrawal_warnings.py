"""Warnings a withdrawal must be confirmed against: own address, look-alike (address poisoning),
large first send, inactive destination, and the address parser's own warnings.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from app.wallet.addresses import AddressWarning, ParsedAddress, parse_address
from app.wallet.chain import raw_address
from app.wallet.contracts import TonNetwork


class WarningKind(enum.StrEnum):
    """Why a withdrawal needs an explicit confirmation."""

    OWN_ADDRESS = "own_address"
    LOOKALIKE_ADDRESS = "lookalike_address"
    LARGE_FIRST_SEND = "large_first_send"
    INACTIVE_DESTINATION = "inactive_destination"
    RAW_ADDRESS = "raw_address"
    MAINNET_ADDRESS_ON_TESTNET = "mainnet_address_on_testnet"
    MASTERCHAIN = "masterchain"


_MESSAGES = {
    WarningKind.OWN_ADDRESS: "This is this wallet's own address: the money would come back, "
    "minus the fee.",
    WarningKind.LOOKALIKE_ADDRESS: "This address looks like {0}, which you used before, but it is "
    "a different address. Scammers make look-alike addresses: compare every character.",
    WarningKind.LARGE_FIRST_SEND: "You have not sent to this address before and are sending "
    "{0} TON. Consider sending a small test amount first.",
    WarningKind.INACTIVE_DESTINATION: "The destination account is not active yet, so the money "
    "cannot bounce back if this address is wrong.",
    WarningKind.RAW_ADDRESS: AddressWarning.RAW_FORM.value,
    WarningKind.MAINNET_ADDRESS_ON_TESTNET: AddressWarning.MAINNET_ADDRESS_ON_TESTNET.value,
    WarningKind.MASTERCHAIN: AddressWarning.MASTERCHAIN.value,
}
_FROM_ADDRESS_WARNING = {
    AddressWarning.RAW_FORM: WarningKind.RAW_ADDRESS,
    AddressWarning.MAINNET_ADDRESS_ON_TESTNET: WarningKind.MAINNET_ADDRESS_ON_TESTNET,
    AddressWarning.MASTERCHAIN: WarningKind.MASTERCHAIN,
}
# Address poisoning: a look-alike matches what people glance at, the start and the end.
_LOOKALIKE_EDGE = 4


@dataclass(frozen=True, slots=True)
class WithdrawalWarning:
    """A typed warning with the sentence the UI shows; the user must confirm its kind."""

    kind: WarningKind
    message: str

    @classmethod
    def of(cls, kind: WarningKind, detail: str = "") -> WithdrawalWarning:
        return cls(kind, _MESSAGES[kind].format(detail))


def address_warnings(parsed: ParsedAddress, *, active: bool) -> list[WithdrawalWarning]:
    warnings = [WithdrawalWarning.of(_FROM_ADDRESS_WARNING[w]) for w in parsed.warnings]
    if parsed.bounceable and not active:
        warnings.append(WithdrawalWarning.of(WarningKind.INACTIVE_DESTINATION))
    return warnings


def lookalike_of(text: str, parsed: ParsedAddress, known: Iterable[str]) -> str | None:
    """A known address (as it was known) that shares ``text``'s first and last characters but
    is another account; None when there is none."""
    edge = _LOOKALIKE_EDGE
    subject = parsed.raw.partition(":")[2] if parsed.is_raw else text
    for address in known:
        raw = _raw_of(address)
        if raw is None or raw == parsed.raw:
            continue
        if parsed.is_raw:
            candidates = [raw.partition(":")[2]]
        else:
            forms = parse_address(raw, TonNetwork.MAINNET).forms
            candidates = [
                address,
                forms.mainnet_bounceable,
                forms.mainnet_non_bounceable,
                forms.testnet_bounceable,
                forms.testnet_non_bounceable,
            ]
        if any(c[:edge] == subject[:edge] and c[-edge:] == subject[-edge:] for c in candidates):
            return address
    return None


def _raw_of(address: str) -> str | None:
    try:
        return raw_address(address.strip())
    except Exception:  # pytoniq raises assorted errors for junk; history junk is just ignored
        return None


def is_known(parsed: ParsedAddress, known: Iterable[str]) -> bool:
    return any(_raw_of(address) == parsed.raw for address in known)
