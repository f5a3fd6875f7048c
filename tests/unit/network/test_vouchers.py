"""Voucher verification (docs/protocol.md §6.2) against the captured reference voucher."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey
from pytoniq_core.boc.builder import Builder

from app.network.tl import decode
from app.network.vouchers import (
    OP_WORKER_PAYOUT_SIGNED,
    VoucherError,
    sign_voucher,
    verify_voucher,
)
from tests.unit.network.session_fixtures import r2w

PROXY_KEY = bytes.fromhex("559087582b7e5ea2b2b986c258e0067b806a59b154e955decf00429610eab095")
PROXY_SC = "UQBPkxYfPKgOBMbbi9VQVO2DQz7Wg3w9K5YTsl8x1_KaeZcZ"
WORKER_SC = "UQDLYGhRHNqXquKXJazsjMBUUhXtmZ_Nom43-_sztpg80bUO"


def _captured_boc() -> bytes:
    result = decode(r2w(2)["data"], expect="worker.CompareBalanceWithProxyResult")
    return bytes(result["signed_payment"]["data"])


def test_the_reference_voucher_verifies() -> None:
    voucher = verify_voucher(
        _captured_boc(), proxy_public_key=PROXY_KEY, worker_sc_address=WORKER_SC
    )
    assert (voucher.tokens, voucher.query_id) == (0, 16571232205570477810)
    assert "boc" not in repr(voucher)


def test_our_vouchers_have_the_reference_layout() -> None:
    key = SigningKey.generate()
    boc = sign_voucher(
        key, tokens=800, query_id=7, worker_sc_address=WORKER_SC, excesses_address=PROXY_SC
    )
    assert len(boc) == len(_captured_boc()) == 180
    voucher = verify_voucher(
        boc, proxy_public_key=bytes(key.verify_key), worker_sc_address=WORKER_SC
    )
    assert voucher.tokens == 800


@pytest.mark.parametrize(
    ("boc", "key", "payee", "message"),
    [
        (b"not a boc", PROXY_KEY, WORKER_SC, "not a valid cell"),
        (None, bytes(32), WORKER_SC, "signature"),
        (None, PROXY_KEY, PROXY_SC, "another worker contract"),
        (None, PROXY_KEY, "garbage", "not a TON address"),
    ],
)
def test_bad_vouchers(boc: bytes | None, key: bytes, payee: str, message: str) -> None:
    with pytest.raises(VoucherError, match=message):
        verify_voucher(boc or _captured_boc(), proxy_public_key=key, worker_sc_address=payee)


def test_tampered_layouts_are_rejected() -> None:
    key = SigningKey.generate()
    payload = Builder().store_uint(OP_WORKER_PAYOUT_SIGNED, 32).store_uint(1, 64).end_cell()
    short = Builder().store_uint(OP_WORKER_PAYOUT_SIGNED, 32).store_ref(payload).end_cell()
    with pytest.raises(VoucherError, match="wrong size"):
        verify_voucher(
            short.to_boc(), proxy_public_key=bytes(key.verify_key), worker_sc_address=WORKER_SC
        )
