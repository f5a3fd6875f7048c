"""Proxy-signed payment vouchers: their cell layout, building (test proxy) and verifying them.

See docs/protocol.md §6.2.

A voucher is a BOC of one cell: ``op, query_id, excesses address, Ed25519 signature`` with a ref
to the signed payload ``op, query_id, tokens, worker-contract address``.
"""

from __future__ import annotations

from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

OP_WORKER_PAYOUT_SIGNED = 0xA040AD28
OUTER_BITS = 32 + 64 + 267 + 512
PAYLOAD_BITS = 32 + 64 + 64 + 267


class VoucherError(ValueError):
    """A voucher that is malformed, signed by someone else or made out to another contract."""


@dataclass(frozen=True, slots=True)
class Voucher:
    """A verified voucher: ``tokens`` is cumulative adjusted tokens anchored on-chain."""

    tokens: int
    query_id: int
    worker_sc_address: str
    boc: bytes

    def __repr__(self) -> str:
        return f"Voucher(tokens={self.tokens}, query_id={self.query_id})"


def verify_voucher(boc: bytes, *, proxy_public_key: bytes, worker_sc_address: str) -> Voucher:
    """Parse ``proxy.signedPayment.data`` and check layout, signature and payee exactly."""
    try:
        outer = Cell.one_from_boc(boc)
        head = outer.begin_parse()  # type: ignore[no-untyped-call]
        if len(outer.bits) != OUTER_BITS or len(outer.refs) != 1:
            raise VoucherError("voucher cell has the wrong size")
        op = head.load_uint(32)
        query_id = head.load_uint(64)
        head.load_address()
        signature = head.load_bytes(64)
        payload = outer.refs[0]
        body = payload.begin_parse()
        if len(payload.bits) != PAYLOAD_BITS or payload.refs:
            raise VoucherError("voucher payload has the wrong size")
        payload_op = body.load_uint(32)
        payload_query_id = body.load_uint(64)
        tokens = body.load_uint(64)
        payee = body.load_address()
    except VoucherError:
        raise
    except Exception as exc:  # pytoniq_core raises many unrelated types for bad BOCs
        raise VoucherError("voucher is not a valid cell") from exc
    if op != OP_WORKER_PAYOUT_SIGNED or payload_op != op:
        raise VoucherError("voucher has the wrong op")
    if payload_query_id != query_id:
        raise VoucherError("voucher query ids differ")
    if payee is None or payee != _address(worker_sc_address):
        raise VoucherError("voucher is made out to another worker contract")
    try:
        VerifyKey(proxy_public_key).verify(payload.hash, signature)
    except (BadSignatureError, ValueError) as exc:
        raise VoucherError("voucher signature does not verify with the proxy key") from exc
    return Voucher(
        tokens=int(tokens), query_id=int(query_id), worker_sc_address=worker_sc_address, boc=boc
    )


def sign_voucher(
    signing_key: SigningKey,
    *,
    tokens: int,
    query_id: int,
    worker_sc_address: str,
    excesses_address: str,
) -> bytes:
    """Build a voucher BOC as a proxy does (used by the test-mode proxy)."""
    payload = (
        Builder()
        .store_uint(OP_WORKER_PAYOUT_SIGNED, 32)
        .store_uint(query_id, 64)
        .store_uint(tokens, 64)
        .store_address(_address(worker_sc_address))
        .end_cell()
    )
    signature = signing_key.sign(payload.hash).signature
    outer = (
        Builder()
        .store_uint(OP_WORKER_PAYOUT_SIGNED, 32)
        .store_uint(query_id, 64)
        .store_address(_address(excesses_address))
        .store_bytes(signature)
        .store_ref(payload)
        .end_cell()
    )
    return bytes(outer.to_boc(has_idx=False, hash_crc32=False))


def _address(text: str) -> Address:
    try:
        return Address(text)
    except Exception as exc:
        raise VoucherError("voucher address is not a TON address") from exc
