"""Money as integer nanotons (1 TON = 10**9 nanotons): the type, parsing and formatting."""

from __future__ import annotations

import re
from typing import NewType

from app.core.errors import UserFacingError

Nanoton = NewType("Nanoton", int)

NANOTONS_PER_TON = 1_000_000_000
DECIMALS = 9
# The whole TON supply is about 5.1e9 TON; anything far above that is a typo, not an amount.
MAX_NANOTONS = Nanoton(10**10 * NANOTONS_PER_TON)

_AMOUNT_RE = re.compile(r"^(?P<int>\d+)(?:\.(?P<frac>\d*))?$|^\.(?P<only_frac>\d+)$")


class AmountError(UserFacingError):
    """A TON amount that cannot be used."""


def nanotons(value: int) -> Nanoton:
    """Tag an integer that is known to be nanotons."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"nanotons must be an int, got {type(value).__name__}")
    return Nanoton(value)


def parse_ton(text: str, *, allow_zero: bool = False) -> Nanoton:
    """Parse a decimal TON amount such as ``"1.5"`` into nanotons, exactly.

    Accepts at most 9 decimal places, a dot (or a comma) as the separator and surrounding
    whitespace. Rejects signs, exponents, thousands separators, more than 9 decimals and zero
    (unless ``allow_zero``). Never goes through ``float``.
    """
    cleaned = text.strip().replace(",", ".").replace("_", "")
    if not cleaned:
        raise AmountError("Enter an amount.", hint="For example 1.5 (TON).")
    if cleaned.startswith("-"):
        raise AmountError("The amount cannot be negative.")
    match = _AMOUNT_RE.match(cleaned)
    if match is None:
        raise AmountError(
            f"'{text.strip()}' is not a TON amount.", hint="Use digits and at most one dot."
        )
    whole = match.group("int") or "0"
    frac = match.group("frac") or match.group("only_frac") or ""
    if len(frac) > DECIMALS:
        raise AmountError(
            "TON amounts have at most 9 decimal places.", hint=f"'{cleaned}' has {len(frac)}."
        )
    value = int(whole) * NANOTONS_PER_TON + int(frac.ljust(DECIMALS, "0") or "0")
    if value == 0 and not allow_zero:
        raise AmountError("The amount must be greater than zero.")
    if value > MAX_NANOTONS:
        raise AmountError("That amount is larger than all the TON in existence.")
    return Nanoton(value)


def format_ton(amount: int, *, trim: bool = False, unit: bool = False) -> str:
    """Format nanotons as TON with exactly 9 decimals (``trim`` drops trailing zeros)."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), NANOTONS_PER_TON)
    text = f"{sign}{whole}.{frac:09d}"
    if trim:
        text = text.rstrip("0").rstrip(".") if frac else f"{sign}{whole}"
    return f"{text} TON" if unit else text
