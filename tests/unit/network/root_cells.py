"""Root contract data built to the docs/protocol.md §6.5 layout with pytoniq_core's Builder
(config, watcher tests).

:func:`root_config_boc` varies what the watcher reacts to (``version``, ``params_version``, the
registered proxies); the rest is fixed at plausible struct-version-3 values.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytoniq_core

# pytoniq_core's builders are untyped; going through Any keeps mypy --strict quiet about it.
_core: Any = pytoniq_core

OWNER = "0:" + "ab" * 32
MODEL = "Qwen/Qwen3-8B@abc:def"


def hash_set(hashes: list[bytes]) -> Any:
    """The root contract's hash sets: a 256-bit-keyed dictionary of ``hashes``, empty values."""
    hm = _core.HashMap(256, value_serializer=lambda _v, b: b)
    for h in hashes:
        hm.set_int_key(int.from_bytes(h, "big"), None)
    return hm.serialize()


def _store_proxy(address: bytes, b: Any) -> Any:
    return b.store_uint(0, 1).store_uint(len(address), 7).store_bytes(address)


def params_cell(params_version: int, *, is_test: bool = True) -> Any:
    """Struct version 3: every multiplier present, stakes, no contract codes."""
    b = _core.begin_cell().store_uint(3, 8).store_uint(params_version, 32).store_uint(77, 32)
    b.store_bit(is_test).store_coins(2_000).store_coins(1_000)
    for multiplier in (10_000, 10_000, 10_000, 10_000):
        b.store_uint(multiplier, 32)
    b.store_uint(600, 32).store_uint(300, 32)
    b.store_coins(10**9).store_coins(10**9)
    for _ in range(3):
        b.store_maybe_ref(None)
    return b.end_cell()


def data_cell(proxies: tuple[str, ...]) -> Any:
    """Registered proxies get seqnos 1, 2, … in the order given."""
    registered = _core.HashMap(32, value_serializer=_store_proxy)
    for seqno, address in enumerate(proxies, start=1):
        registered.set_int_key(seqno, address.encode())
    b = _core.begin_cell().store_dict(hash_set([b"\x01" * 32]))
    b.store_dict(registered.serialize()).store_uint(len(proxies), 32)
    b.store_dict(hash_set([b"\x02" * 32]))
    b.store_dict(hash_set([hashlib.sha256(MODEL.encode()).digest()]))
    return b.end_cell()


def root_config_boc(
    *,
    version: int = 1,
    params_version: int = 1,
    proxies: tuple[str, ...] = ("10.0.0.1:11001",),
    is_test: bool = True,
) -> bytes:
    """The root contract's data cell as a BOC, the way an account state carries it."""
    b = _core.begin_cell().store_address(_core.Address(OWNER))
    b.store_ref(data_cell(proxies)).store_ref(params_cell(params_version, is_test=is_test))
    b.store_uint(version, 32)
    return bytes(b.end_cell().to_boc())
