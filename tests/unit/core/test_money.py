"""Nanoton parsing and formatting: exact, never through floats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.money import MAX_NANOTONS, AmountError, format_ton, nanotons, parse_ton


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1_000_000_000),
        ("1.5", 1_500_000_000),
        (" 0.000000001 ", 1),
        ("0,25", 250_000_000),
        (".5", 500_000_000),
        ("12.", 12_000_000_000),
        ("1_000", 1_000_000_000_000),
        ("0.123456789", 123_456_789),
    ],
)
def test_parse_ton_exact(text: str, expected: int) -> None:
    assert parse_ton(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "Enter an amount"),
        ("   ", "Enter an amount"),
        ("-1", "negative"),
        ("0", "greater than zero"),
        ("0.0000000001", "at most 9 decimal"),
        ("1e9", "not a TON amount"),
        ("1.2.3", "not a TON amount"),
        ("abc", "not a TON amount"),
        ("+1", "not a TON amount"),
        ("99999999999", "larger than all the TON"),
    ],
)
def test_parse_ton_rejects(text: str, fragment: str) -> None:
    with pytest.raises(AmountError, match=fragment):
        parse_ton(text)


def test_zero_allowed_when_asked() -> None:
    assert parse_ton("0", allow_zero=True) == 0


@pytest.mark.parametrize(
    ("amount", "full", "trimmed"),
    [
        (0, "0.000000000", "0"),
        (1, "0.000000001", "0.000000001"),
        (1_500_000_000, "1.500000000", "1.5"),
        (-2_000_000_000, "-2.000000000", "-2"),
        (-1, "-0.000000001", "-0.000000001"),
    ],
)
def test_format_ton(amount: int, full: str, trimmed: str) -> None:
    assert format_ton(amount) == full
    assert format_ton(amount, trim=True) == trimmed
    assert format_ton(amount, unit=True) == f"{full} TON"


@given(st.integers(min_value=1, max_value=MAX_NANOTONS))
def test_round_trip(value: int) -> None:
    assert parse_ton(format_ton(value)) == value
    assert parse_ton(format_ton(value, trim=True)) == value


def test_nanotons_rejects_non_int() -> None:
    assert nanotons(5) == 5
    with pytest.raises(TypeError):
        nanotons(True)
    with pytest.raises(TypeError):
        nanotons(1.5)  # type: ignore[arg-type]
