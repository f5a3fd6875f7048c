"""The COCOON root contract's configuration, parsed from the contract's on-chain data cell or from
the reference's fake-TON JSON (``rootConfig.pseudo``) into one frozen :class:`RootConfig`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytoniq_core.boc.address import Address
from pytoniq_core.boc.cell import Cell
from pytoniq_core.boc.slice import Slice

from app.core.errors import UserFacingError
from app.core.money import Nanoton
from app.network.worker_config import ProxyAddress

#: COCOON root contracts known per network (mainnet: the upstream worker.conf.example at b75d444);
#: testnet has no published one, so the user sets it.
KNOWN_ROOT_CONTRACTS: dict[str, str] = {
    "mainnet": "EQCns7bYSp0igFvS1wpb5wsZjCKCV19MD5AVzI4EyxsnU73k"
}
#: Price multipliers are in ten-thousandths (10000 = 1.0x); older struct versions lack some.
DEFAULT_MULTIPLIER = 10_000
_ONE_TON = Nanoton(1_000_000_000)
_MAX_STRUCT_VERSION = 3
_HINT = "The root contract's data does not have the expected COCOON layout."
FAKE_TON_HINT = "Check the fake-TON configuration file (the reference's rootConfig.pseudo JSON)."


class RootConfigError(UserFacingError):
    """The root contract's data (or a fake-TON configuration) cannot be used."""


@dataclass(frozen=True, slots=True)
class RegisteredProxy:
    """One registered proxy: its seqno in the root contract, where workers and clients dial it."""

    seqno: int
    worker_address: ProxyAddress
    client_address: ProxyAddress


@dataclass(frozen=True, slots=True)
class RootConfig:
    """Everything the worker needs from the root contract. Money is in nanotons per adjusted token.

    ``skipped_proxy_seqnos`` lists registered entries the reference also ignores (a non-zero type
    bit or an address that is not ``ip:port``), so that nothing is dropped silently.
    """

    owner_address: str  # raw form "wc:hex"
    version: int
    struct_version: int
    params_version: int
    unique_id: int
    is_test: bool
    price_per_token: Nanoton
    worker_fee_per_token: Nanoton
    prompt_tokens_price_multiplier: int
    cached_tokens_price_multiplier: int
    completion_tokens_price_multiplier: int
    reasoning_tokens_price_multiplier: int
    proxy_delay_before_close: int
    client_delay_before_close: int
    min_proxy_stake: Nanoton
    min_client_stake: Nanoton
    proxy_hashes: frozenset[bytes]
    worker_hashes: frozenset[bytes]
    model_hashes: frozenset[bytes]
    registered_proxies: tuple[RegisteredProxy, ...]
    last_proxy_seqno: int
    proxy_sc_code: bytes | None  # BOC of the contract code, when the config carries it
    worker_sc_code: bytes | None
    client_sc_code: bytes | None
    skipped_proxy_seqnos: tuple[int, ...] = ()

    @property
    def proxy_addresses(self) -> tuple[ProxyAddress, ...]:
        """Where a worker may dial, in seqno order."""
        return tuple(p.worker_address for p in self.registered_proxies)

    @property
    def client_proxy_addresses(self) -> tuple[ProxyAddress, ...]:
        return tuple(p.client_address for p in self.registered_proxies)

    def accepts_model(self, full_model_name: str) -> bool:
        """Whether sha256 of the full model name (``name@commit:verity``) is registered."""
        return hashlib.sha256(full_model_name.encode()).digest() in self.model_hashes

    def accepts_worker_image(self, image_hash: bytes) -> bool:
        return image_hash in self.worker_hashes

    def accepts_proxy_image(self, image_hash: bytes) -> bool:
        return image_hash in self.proxy_hashes


def parse_proxy_address(text: str) -> tuple[ProxyAddress, ProxyAddress]:
    """``"ip:port"`` or ``"ip:port_workers ip:port_clients"`` → (worker, client) addresses."""
    worker_text, sep, client_text = text.partition(" ")
    worker = _parse_host_port(worker_text)
    return worker, (_parse_host_port(client_text) if sep else worker)


def _parse_host_port(text: str) -> ProxyAddress:
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    host, sep, port_text = text.partition(":")
    if not sep or not port_text.isdigit() or not port_text.isascii():
        raise RootConfigError(f"Proxy address {text!r} is not ip:port.", hint=_HINT)
    port = int(port_text)
    try:
        ip = ipaddress.IPv4Address(host)
    except ipaddress.AddressValueError:
        raise RootConfigError(f"Proxy host {host!r} is not an IPv4 address.", hint=_HINT) from None
    if not 0 < port < 65536:
        raise RootConfigError(f"Proxy port {port} is out of range.", hint=_HINT)
    return ProxyAddress(str(ip), port)


# ---- on-chain data cell (RootContractConfig::load_from_state) ----


def parse_root_config_cell(data: bytes | Cell) -> RootConfig:
    """Parse the root contract's data: a BOC or a cell laid out as in docs/protocol.md §6.5."""
    try:
        cell = data if isinstance(data, Cell) else Cell.one_from_boc(data)
        return _parse_root(cell.begin_parse())  # type: ignore[no-untyped-call]
    except RootConfigError:
        raise
    except Exception as exc:
        # pytoniq_core reports short slices, bad BOCs and bad dictionaries with assorted exception
        # types; all of them mean the same thing here.
        raise RootConfigError(
            f"The root contract data could not be read ({type(exc).__name__}).", hint=_HINT
        ) from exc


def _load_std_address(s: Slice, what: str) -> str:
    if s.load_uint(3) != 0b100:  # addr_std$10, anycast absent
        raise RootConfigError(f"The {what} is not a standard address.", hint=_HINT)
    workchain = s.load_int(8)
    return f"{workchain}:{s.load_bytes(32).hex()}"


def _load_coins(s: Slice, what: str) -> Nanoton:
    length = s.load_uint(4)
    # The reference keeps coins in a uint64: longer values are refused.
    if length > 8:
        raise RootConfigError(f"The {what} does not fit in 64 bits.", hint=_HINT)
    return Nanoton(s.load_uint(length * 8) if length else 0)


def _require_empty(s: Slice, what: str) -> None:
    if s.remaining_bits or s.remaining_refs:
        raise RootConfigError(f"Extra data after the {what}.", hint=_HINT)


def _parse_root(root: Slice) -> RootConfig:
    owner = _load_std_address(root, "root owner address")
    data_cell = root.load_ref()
    params_cell = root.load_ref()
    version = root.load_uint(32)
    _require_empty(root, "root contract data")
    params = _parse_params(params_cell.begin_parse())  # type: ignore[no-untyped-call]
    lists = _parse_data_cell(data_cell.begin_parse())  # type: ignore[no-untyped-call]
    return RootConfig(owner_address=owner, version=version, **params, **lists)


def _parse_params(p: Slice) -> dict[str, Any]:
    sv = p.load_uint(8)
    if sv > _MAX_STRUCT_VERSION:
        raise RootConfigError(f"Unsupported root params struct version {sv}.", hint=_HINT)
    out: dict[str, Any] = {
        "struct_version": sv,
        "params_version": p.load_uint(32),
        "unique_id": p.load_uint(32),
        "is_test": bool(p.load_bit()),
        "price_per_token": _load_coins(p, "price per token"),
        "worker_fee_per_token": _load_coins(p, "worker fee per token"),
    }
    optional_mult = (
        ("prompt", 3),
        ("cached", 2),
        ("completion", 3),
        ("reasoning", 2),
    )
    for kind, since in optional_mult:
        value = p.load_uint(32) if sv >= since else DEFAULT_MULTIPLIER
        out[f"{kind}_tokens_price_multiplier"] = value
    out["proxy_delay_before_close"] = p.load_uint(32)
    out["client_delay_before_close"] = p.load_uint(32)
    out["min_proxy_stake"] = _load_coins(p, "min proxy stake") if sv >= 1 else _ONE_TON
    out["min_client_stake"] = _load_coins(p, "min client stake") if sv >= 1 else _ONE_TON
    for kind in ("proxy", "worker", "client"):
        code = p.load_maybe_ref()
        out[f"{kind}_sc_code"] = code.to_boc() if code is not None else None  # type: ignore[no-untyped-call]
    _require_empty(p, "root params")
    return out


def _hash_set(s: Slice) -> frozenset[bytes]:
    entries = s.load_dict(256)
    return frozenset(int(k).to_bytes(32, "big") for k in (entries or {}))


def _parse_data_cell(d: Slice) -> dict[str, Any]:
    proxy_hashes = _hash_set(d)
    raw_proxies: dict[int, Slice] = d.load_dict(32, value_deserializer=lambda v: v) or {}
    last_proxy_seqno = d.load_uint(32)
    worker_hashes = _hash_set(d)
    model_hashes = _hash_set(d)
    _require_empty(d, "root data cell")
    proxies: list[RegisteredProxy] = []
    skipped: list[int] = []
    for seqno in sorted(raw_proxies):
        entry = _parse_proxy_entry(int(seqno), raw_proxies[seqno])
        if entry is None:
            skipped.append(int(seqno))
        else:
            proxies.append(entry)
    return {
        "proxy_hashes": proxy_hashes,
        "registered_proxies": tuple(proxies),
        "last_proxy_seqno": last_proxy_seqno,
        "worker_hashes": worker_hashes,
        "model_hashes": model_hashes,
        "skipped_proxy_seqnos": tuple(skipped),
    }


def _parse_proxy_entry(seqno: int, value: Slice) -> RegisteredProxy | None:
    if value.load_bit():
        return None  # entry type 1 is reserved; the reference skips it too
    raw = value.load_bytes(value.load_uint(7))
    try:
        worker, client = parse_proxy_address(raw.decode("ascii"))
    except (UnicodeDecodeError, RootConfigError):
        return None
    return RegisteredProxy(seqno, worker, client)


# ---- fake-TON JSON (RootContractConfig::load_from_json, rootConfig.pseudo) ----


def parse_fake_ton_config(config: str | bytes | Mapping[str, Any]) -> RootConfig:
    """Read the reference's fake-TON JSON (text or an already-parsed object).

    Like the reference, absent keys take their zero values, unknown keys are ignored, and the
    params the pseudo config lacks are fixed: struct version 1, unique id 13, test mode, delays
    600/300 s, stakes 1 TON, multipliers 1.0x. ``model_types`` names are hashed without ``@…``.
    """
    obj = _load_json(config)
    owner_text = _json_str(obj, "root_owner_address")
    try:
        owner = Address(owner_text).to_str(is_user_friendly=False)  # type: ignore[no-untyped-call]
    except Exception as exc:
        # pytoniq_core raises several exception types for a malformed address string.
        raise RootConfigError(
            "root_owner_address is not a TON address.", hint=FAKE_TON_HINT
        ) from exc
    models = set(_json_hashes(obj, "model_hashes"))
    for name in _json_list(obj, "model_types", str):
        models.add(hashlib.sha256(name.partition("@")[0].encode()).digest())
    return RootConfig(
        owner_address=owner,
        version=_json_int(obj, "version", 32),
        struct_version=1,
        params_version=_json_int(obj, "params_version", 32),
        unique_id=13,
        is_test=True,
        price_per_token=Nanoton(_json_int(obj, "price_per_token", 32)),
        worker_fee_per_token=Nanoton(_json_int(obj, "worker_fee_per_token", 32)),
        prompt_tokens_price_multiplier=DEFAULT_MULTIPLIER,
        cached_tokens_price_multiplier=DEFAULT_MULTIPLIER,
        completion_tokens_price_multiplier=DEFAULT_MULTIPLIER,
        reasoning_tokens_price_multiplier=DEFAULT_MULTIPLIER,
        proxy_delay_before_close=600,
        client_delay_before_close=300,
        min_proxy_stake=_ONE_TON,
        min_client_stake=_ONE_TON,
        proxy_hashes=frozenset(_json_hashes(obj, "proxy_hashes")),
        worker_hashes=frozenset(_json_hashes(obj, "worker_hashes")),
        model_hashes=frozenset(models),
        registered_proxies=_json_proxies(obj),
        last_proxy_seqno=_json_int(obj, "last_proxy_seqno", 32),
        proxy_sc_code=_json_boc(obj, "proxy_sc_code"),
        worker_sc_code=_json_boc(obj, "worker_sc_code"),
        client_sc_code=_json_boc(obj, "client_sc_code"),
    )


def _load_json(config: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(config, str | bytes):
        try:
            config = json.loads(config)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RootConfigError(
                "The fake-TON configuration is not JSON.", hint=FAKE_TON_HINT
            ) from exc
    if not isinstance(config, Mapping):
        raise RootConfigError(
            "The fake-TON configuration is not a JSON object.", hint=FAKE_TON_HINT
        )
    return config


def _bad(key: str, expected: str) -> RootConfigError:
    return RootConfigError(
        f"{key} in the fake-TON configuration must be {expected}.", hint=FAKE_TON_HINT
    )


def _json_int(obj: Mapping[str, Any], key: str, bits: int) -> int:
    value = obj.get(key, 0)
    # TD's JSON reader takes integers as numbers or as decimal strings.
    if isinstance(value, str) and value.lstrip("-").isdigit() and value.isascii():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(key, "an integer")
    if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        raise _bad(key, f"a {bits}-bit integer")
    return value


def _json_str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise _bad(key, "a string")
    return value


def _json_list(obj: Mapping[str, Any], key: str, item_type: type) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, item_type) for v in value):
        raise _bad(key, f"a list of {item_type.__name__}")
    return value


def _json_hashes(obj: Mapping[str, Any], key: str) -> list[bytes]:
    out = []
    for text in _json_list(obj, key, str):
        try:
            digest = base64.b64decode(text, validate=True)
        except binascii.Error:
            raise _bad(key, "a list of base64 256-bit hashes") from None
        if len(digest) != 32:
            raise _bad(key, "a list of base64 256-bit hashes")
        out.append(digest)
    return out


def _json_proxies(obj: Mapping[str, Any]) -> tuple[RegisteredProxy, ...]:
    proxies = []
    for entry in _json_list(obj, "registered_proxies", dict):
        seqno = _json_int(entry, "seqno", 32)
        worker, client = parse_proxy_address(_json_str(entry, "address"))
        proxies.append(RegisteredProxy(seqno, worker, client))
    return tuple(sorted(proxies, key=lambda p: p.seqno))


def _json_boc(obj: Mapping[str, Any], key: str) -> bytes | None:
    text = _json_str(obj, key)
    if not text:
        return None
    try:
        boc = bytes.fromhex(text)
        Cell.one_from_boc(boc)
    except Exception as exc:
        # A bad hex digit or a malformed BOC; pytoniq_core has no single error type for the latter.
        raise _bad(key, "a hex-encoded BOC") from exc
    return boc
