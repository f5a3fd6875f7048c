"""The strict address parser: every accepted form and every bad input with its message."""

from __future__ import annotations

import base64

import pytest
from pytoniq_core.boc.address import Address
from pytoniq_core.crypto.crc import crc16

from app.wallet.addresses import AddressError, AddressWarning, parse_address
from app.wallet.contracts import TonNetwork

MAIN, TEST = TonNetwork.MAINNET, TonNetwork.TESTNET
RAW = "0:1797a5786aabfda0092fd61005716bc49e4069fd63bf010670fa975122844713"
EQ = "EQAXl6V4aqv9oAkv1hAFcWvEnkBp_WO_AQZw-pdRIoRHE136"
UQ = "UQAXl6V4aqv9oAkv1hAFcWvEnkBp_WO_AQZw-pdRIoRHEwA_"
KQ = "kQAXl6V4aqv9oAkv1hAFcWvEnkBp_WO_AQZw-pdRIoRHE-Zw"
ZQ = "0QAXl6V4aqv9oAkv1hAFcWvEnkBp_WO_AQZw-pdRIoRHE7u1"
HASH = bytes.fromhex(RAW[2:])


def _friendly(tag: int, workchain: int, hash_part: bytes = HASH) -> str:
    body = bytes([tag, workchain & 0xFF]) + hash_part
    return base64.urlsafe_b64encode(body + crc16(body)).decode()


@pytest.mark.parametrize(
    ("text", "network", "bounceable", "testnet"),
    [
        (EQ, MAIN, True, False),
        (UQ, MAIN, False, False),
        (KQ, TEST, True, True),
        (ZQ, TEST, False, True),
    ],
    ids=["EQ", "UQ", "kQ", "0Q"],
)
def test_friendly_forms_parse_with_their_flags(
    text: str, network: TonNetwork, bounceable: bool, testnet: bool
) -> None:
    parsed = parse_address(f"  {text}\n", network)
    assert (parsed.bounceable, parsed.testnet, parsed.is_raw) == (bounceable, testnet, False)
    assert parsed.raw == RAW
    assert parsed.hash_part == HASH
    assert parsed.warnings == ()
    assert parsed.address == Address(RAW)
    assert parsed.forms.mainnet_non_bounceable == UQ


def test_standard_base64_alphabet_is_accepted() -> None:
    standard = EQ.replace("_", "/").replace("-", "+")
    assert "/" in standard
    assert parse_address(standard, MAIN).raw == RAW


def test_raw_address_is_accepted_only_with_a_warning() -> None:
    parsed = parse_address(RAW.upper().replace("0X", "0x"), MAIN)
    assert parsed.is_raw
    assert parsed.bounceable is None
    assert parsed.testnet is None
    assert parsed.warnings == (AddressWarning.RAW_FORM,)
    assert parsed.raw == RAW


def test_masterchain_addresses_warn() -> None:
    raw = parse_address("-1:" + "ab" * 32, MAIN)
    assert raw.workchain == -1
    assert raw.warnings == (AddressWarning.RAW_FORM, AddressWarning.MASTERCHAIN)
    friendly = parse_address(_friendly(0x11, -1), MAIN)
    assert friendly.warnings == (AddressWarning.MASTERCHAIN,)


def test_testnet_address_is_refused_on_mainnet() -> None:
    for text in (KQ, ZQ):
        with pytest.raises(AddressError, match="testnet address"):
            parse_address(text, MAIN)


def test_mainnet_address_on_testnet_warns() -> None:
    parsed = parse_address(UQ, TEST)
    assert parsed.warnings == (AddressWarning.MAINNET_ADDRESS_ON_TESTNET,)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"], ids=["empty", "spaces", "whitespace"])
def test_empty_input(text: str) -> None:
    with pytest.raises(AddressError, match="Enter a TON address"):
        parse_address(text, MAIN)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (EQ[:20] + " " + EQ[20:], "no spaces"),
        (EQ[:-1], "48 characters long; this one has 47"),
        (EQ + "A", "this one has 49"),
        (EQ[:10] + "!" + EQ[11:], "characters that a TON address cannot have"),
        ("EQ+Xl6V4aqv9oAkv1hAFcWvEnkBp_WO_AQZw-pdRIoRHE136", "cannot have"),  # mixed alphabets
        (EQ[:10] + ("B" if EQ[10] != "B" else "C") + EQ[11:], "wrong checksum"),
        (_friendly(0x22, 0), r"Unknown TON address type \(tag 0x22\)"),
        (_friendly(0x00, 0), r"tag 0x00"),
        (_friendly(0x11, 5), "Workchain 5 is not supported"),
        ("0:ab", "64 hex digits after the colon; this one has 2"),
        ("0:" + "zz" * 32, "malformed"),
        ("ton://transfer/" + EQ, "malformed"),
        ("5:" + "ab" * 32, "Workchain 5"),
    ],
    ids=[
        "inner-space",
        "short",
        "long",
        "bad-char",
        "mixed-alphabet",
        "checksum",
        "tag-0x22",
        "tag-0x00",
        "workchain",
        "raw-short",
        "raw-not-hex",
        "deep-link",
        "raw-workchain",
    ],
)
def test_bad_addresses_get_clear_errors(text: str, message: str) -> None:
    with pytest.raises(AddressError, match=message):
        parse_address(text, MAIN)
