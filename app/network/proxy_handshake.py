"""The handshake messages the worker sends and how it judges the proxy's answer.

See docs/protocol.md §4.1.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.network.payment_store import ProxyAccount
from app.network.tl import TLObject
from app.network.worker_config import WorkerConfig

MIN_PROTO = 1
MAX_PROTO = 2


class HandshakeError(Exception):
    """The proxy answered the handshake in a way this worker must not accept."""


@dataclass(frozen=True, slots=True)
class ProxyIdentity:
    """What ``worker.connectedToProxy`` told us about the proxy and our contract with it."""

    proto_version: int
    public_key: bytes
    proxy_sc_address: str
    worker_sc_address: str


def connect_to_proxy(config: WorkerConfig, coefficient: int) -> TLObject:
    """``worker.connectToProxy`` with ``flags = 3``, exactly as the reference worker sends it."""
    params = TLObject(
        "worker.params",
        {
            "flags": 3,
            "worker_owner_address": config.owner_address_friendly,
            "model": config.model,
            "coefficient": coefficient,
            "is_test": config.is_test,
            "proxy_cnt": config.proxy_connections,
            "max_active_requests": config.max_active_requests,
            "min_proto_version": MIN_PROTO,
            "max_proto_version": MAX_PROTO,
        },
    )
    return TLObject("worker.connectToProxy", {"params": params})


def accept_connected(answer: TLObject, *, is_test: bool) -> ProxyIdentity:
    """Check ``worker.connectedToProxy``; :class:`HandshakeError` names what is wrong."""
    params = answer["params"]
    flags = params["flags"]
    if not flags & 1 or not flags & 2:
        raise HandshakeError(f"proxy params flags {flags} lack is_test/proto_version")
    if bool(params["is_test"]) != is_test:
        mode = "test" if params["is_test"] else "production"
        raise HandshakeError(f"proxy runs in {mode} mode, this worker does not")
    proto = params["proto_version"]
    if not MIN_PROTO <= proto <= MAX_PROTO:
        raise HandshakeError(f"proxy chose protocol version {proto}, outside 1..2")
    key = params["proxy_public_key"]
    if len(key) != 32:
        raise HandshakeError("proxy public key is not 32 bytes")
    return ProxyIdentity(proto, key, params["proxy_sc_address"], answer["worker_sc_address"])


def compare_balance(balance: ProxyAccount) -> TLObject:
    """``worker.compareBalanceWithProxy`` with only numbers this proxy reported to us.

    The reference proxy aborts (a ``CHECK``) when a worker claims more than it knows.
    """
    return TLObject(
        "worker.compareBalanceWithProxy",
        {
            "tokens_committed_to_blockchain": balance.voucher_tokens,
            "tokens_committed_to_db": balance.db_tokens,
            "max_tokens": balance.max_tokens,
        },
    )


def extended_compare_balance(balance: ProxyAccount) -> TLObject:
    return TLObject(
        "worker.extendedCompareBalanceWithProxy",
        {"tokens_committed_to_db": balance.db_tokens, "other": b""},
    )
