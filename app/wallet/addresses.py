"""The strict TON address parser used for every address a user types or pastes.

pytoniq's ``Address()`` accepts invalid tags, short raw hashes and stray spaces; this parser
checks length, alphabet, checksum, tag and workchain and refuses testnet addresses on mainnet.
"""

from __future__ import annotations

import base64
import enum
import re
from dataclasses import dataclass
from typing import Final

from pytoniq_core.boc.address import Address
from pytoniq_core.crypto.crc import crc16

from app.core.errors import UserFacingError
from app.wallet.contracts import AddressForms, TonNetwork, address_forms

FRIENDLY_LENGTH: Final = 48
# tag byte → (bounceable, testnet)
_TAGS: Final[dict[int, tuple[bool, bool]]] = {
    0x11: (True, False),
    0x51: (False, False),
    0x91: (True, True),
    0xD1: (False, True),
}
_RAW_RE: Final = re.compile(r"^(-?\d+):([0-9a-fA-F]*)$")
_URL_SAFE_RE: Final = re.compile(r"^[A-Za-z0-9_-]+$")
_STANDARD_RE: Final = re.compile(r"^[A-Za-z0-9+/]+$")


class AddressError(UserFacingError):
    """An address that cannot be sent to; the message says what is wrong with it."""


class AddressWarning(enum.Enum):
    """Something the user must confirm before sending to a parsed address."""

    RAW_FORM = "This is a raw address without a checksum: a typo would not be detected."
    MAINNET_ADDRESS_ON_TESTNET = "This is a mainnet address, but the app is on a test network."
    MASTERCHAIN = "This address is in the masterchain (workchain -1): fees there are higher."


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """A checked address. ``bounceable``/``testnet`` are ``None`` for raw input (no flags)."""

    workchain: int
    hash_part: bytes
    bounceable: bool | None
    testnet: bool | None
    is_raw: bool
    warnings: tuple[AddressWarning, ...]

    @property
    def address(self) -> Address:
        return Address((self.workchain, self.hash_part))

    @property
    def raw(self) -> str:
        return f"{self.workchain}:{self.hash_part.hex()}"

    @property
    def forms(self) -> AddressForms:
        return address_forms(self.address)

    def bounce_to(self, active: bool) -> bool:
        """The bounce flag of a send here (docs/wallet.md §5.2): only when the account is
        ``active`` and the address does not ask for non-bounceable."""
        return active and self.bounceable is not False


def parse_address(text: str, network: TonNetwork) -> ParsedAddress:
    """Parse ``text`` strictly for ``network``; raises :class:`AddressError` on any problem."""
    cleaned = text.strip()
    if not cleaned:
        raise AddressError("Enter a TON address.", hint="For example UQ… or EQ… (48 characters).")
    if any(ch.isspace() for ch in cleaned):
        raise AddressError(
            "A TON address has no spaces in it.", hint="Copy the address again in one piece."
        )
    if ":" in cleaned:
        return _parse_raw(cleaned, network)
    return _parse_friendly(cleaned, network)


def _parse_raw(text: str, network: TonNetwork) -> ParsedAddress:
    match = _RAW_RE.match(text)
    if match is None:
        raise AddressError(
            "This raw address is malformed.", hint="A raw address is 0:<64 hex digits>."
        )
    workchain = _check_workchain(int(match.group(1)))
    digits = match.group(2)
    if len(digits) != 64:
        raise AddressError(
            f"A raw address needs 64 hex digits after the colon; this one has {len(digits)}."
        )
    warnings = [AddressWarning.RAW_FORM]
    if workchain == -1:
        warnings.append(AddressWarning.MASTERCHAIN)
    return ParsedAddress(
        workchain=workchain,
        hash_part=bytes.fromhex(digits),
        bounceable=None,
        testnet=None,
        is_raw=True,
        warnings=tuple(warnings),
    )


def _parse_friendly(text: str, network: TonNetwork) -> ParsedAddress:
    if len(text) != FRIENDLY_LENGTH:
        raise AddressError(
            f"A TON address is {FRIENDLY_LENGTH} characters long; this one has {len(text)}.",
            hint="Make sure you copied the whole address.",
        )
    if _URL_SAFE_RE.match(text):
        data = _b64decode(text, altchars=b"-_")
    elif _STANDARD_RE.match(text):
        data = _b64decode(text, altchars=b"+/")
    else:
        raise AddressError(
            "This address contains characters that a TON address cannot have.",
            hint="Letters, digits and either '-' '_' or '+' '/' only.",
        )
    if crc16(data[:34]) != data[34:]:
        raise AddressError(
            "This address has a wrong checksum: it probably contains a typo.",
            hint="Copy the address again instead of typing it.",
        )
    flags = _TAGS.get(data[0])
    if flags is None:
        raise AddressError(f"Unknown TON address type (tag 0x{data[0]:02x}).")
    bounceable, testnet = flags
    workchain = _check_workchain(int.from_bytes(data[1:2], "big", signed=True))
    warnings: list[AddressWarning] = []
    if testnet and not network.is_testnet:
        raise AddressError(
            "This is a testnet address; sending mainnet TON to it could lose the money.",
            hint="Ask the recipient for their mainnet address.",
        )
    if network.is_testnet and not testnet:
        warnings.append(AddressWarning.MAINNET_ADDRESS_ON_TESTNET)
    if workchain == -1:
        warnings.append(AddressWarning.MASTERCHAIN)
    return ParsedAddress(
        workchain=workchain,
        hash_part=data[2:34],
        bounceable=bounceable,
        testnet=testnet,
        is_raw=False,
        warnings=tuple(warnings),
    )


def _b64decode(text: str, *, altchars: bytes) -> bytes:
    # 48 characters of one alphabet always decode to exactly 36 bytes (no padding needed).
    return base64.b64decode(text, altchars=altchars, validate=True)


def _check_workchain(workchain: int) -> int:
    if workchain not in (0, -1):
        raise AddressError(
            f"Workchain {workchain} is not supported.",
            hint="TON wallets live in workchain 0 (or -1).",
        )
    return workchain
