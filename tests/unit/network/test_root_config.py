"""Root contract config: cells built to the docs/protocol.md §6.5 layout, fake-TON JSON, bad
input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import pytoniq_core
from pytoniq_core.boc.cell import Cell

from app.core.errors import UserFacingError
from app.network.root_config import (
    RegisteredProxy,
    RootConfigError,
    parse_fake_ton_config,
    parse_proxy_address,
    parse_root_config_cell,
)
from app.network.worker_config import ProxyAddress
from tests.unit.network.root_cells import hash_set
from tests.unit.network.traces import traces_dir

# pytoniq_core's builders are untyped; going through Any keeps mypy --strict quiet about it.
_core: Any = pytoniq_core
begin_cell = _core.begin_cell
HashMap = _core.HashMap
Address = _core.Address

OWNER = Address("0:" + "ab" * 32)
CODE = begin_cell().store_uint(0xC0DE, 16).end_cell()
H1, H2, H3 = (bytes([i]) * 32 for i in (1, 2, 3))


def _proxy_entry(address: bytes, entry_type: int = 0) -> tuple[int, bytes]:
    return entry_type, address


def _store_entry(entry: tuple[int, bytes], b: Any) -> Any:
    entry_type, address = entry
    return b.store_uint(entry_type, 1).store_uint(len(address), 7).store_bytes(address)


def _proxies(entries: dict[int, Any]) -> Any:
    hm = HashMap(32, value_serializer=_store_entry)
    for seqno, entry in entries.items():
        hm.set_int_key(seqno, entry)
    return hm.serialize()


def params_cell(
    sv: int = 3,
    *,
    mults: tuple[int, int, int, int] = (11000, 12000, 13000, 14000),
    price_bytes: int | None = None,
    codes: tuple[Cell | None, Cell | None, Cell | None] = (None, CODE, None),
    extra_bit: bool = False,
    stop_after_delays: bool = False,
    is_test: bool = True,
) -> Any:
    b = begin_cell().store_uint(sv, 8).store_uint(5, 32).store_uint(77, 32).store_bit(is_test)
    if price_bytes is None:
        b.store_coins(2_000).store_coins(1_000)
    else:  # a Coins header announcing more than 8 bytes
        b.store_uint(price_bytes, 4).store_uint(1, price_bytes * 8).store_coins(1)
    prompt, cached, completion, reasoning = mults
    if sv >= 3:
        b.store_uint(prompt, 32)
    if sv >= 2:
        b.store_uint(cached, 32)
    if sv >= 3:
        b.store_uint(completion, 32)
    if sv >= 2:
        b.store_uint(reasoning, 32)
    b.store_uint(600, 32).store_uint(300, 32)
    if stop_after_delays:
        return b.end_cell()
    if sv >= 1:
        b.store_coins(3 * 10**9).store_coins(4 * 10**9)
    for code in codes:
        b.store_maybe_ref(code)
    if extra_bit:
        b.store_bit(1)
    return b.end_cell()


def data_cell(
    proxies: dict[int, Any] | None = None,
    *,
    extra_bit: bool = False,
    models: list[bytes] | None = None,
) -> Any:
    if proxies is None:
        proxies = {
            2: _proxy_entry(b"10.0.0.2:11001 10.0.0.2:11002"),
            1: _proxy_entry(b"10.0.0.1:11001"),
        }
    b = begin_cell().store_dict(hash_set([H1]))
    b.store_dict(_proxies(proxies)).store_uint(9, 32)
    b.store_dict(hash_set([H2, H3]))
    b.store_dict(hash_set(models if models is not None else [hashlib.sha256(b"m@c:v").digest()]))
    if extra_bit:
        b.store_bit(0)
    return b.end_cell()


def root_cell(
    params: Cell | None = None,
    data: Cell | None = None,
    *,
    owner: Any = OWNER,
    extra_bit: bool = False,
) -> Any:
    b = begin_cell()
    if owner is None:
        b.store_uint(0, 2)  # addr_none
    else:
        b.store_address(owner)
    b.store_ref(data if data is not None else data_cell())
    b.store_ref(params if params is not None else params_cell())
    b.store_uint(42, 32)
    if extra_bit:
        b.store_bit(1)
    return b.end_cell()


# ---- on-chain layout ----


def test_full_struct_version_3() -> None:
    config = parse_root_config_cell(root_cell())
    assert config.owner_address == "0:" + "ab" * 32
    assert config.version == 42
    assert (config.struct_version, config.params_version, config.unique_id) == (3, 5, 77)
    assert config.is_test is True
    assert (config.price_per_token, config.worker_fee_per_token) == (2_000, 1_000)
    assert (
        config.prompt_tokens_price_multiplier,
        config.cached_tokens_price_multiplier,
        config.completion_tokens_price_multiplier,
        config.reasoning_tokens_price_multiplier,
    ) == (11000, 12000, 13000, 14000)
    assert (config.proxy_delay_before_close, config.client_delay_before_close) == (600, 300)
    assert (config.min_proxy_stake, config.min_client_stake) == (3 * 10**9, 4 * 10**9)
    assert config.proxy_hashes == {H1}
    assert config.worker_hashes == {H2, H3}
    assert config.accepts_model("m@c:v")
    assert not config.accepts_model("m")
    assert config.accepts_worker_image(H2)
    assert not config.accepts_worker_image(H1)
    assert config.accepts_proxy_image(H1)
    assert config.last_proxy_seqno == 9
    assert config.registered_proxies == (
        RegisteredProxy(1, ProxyAddress("10.0.0.1", 11001), ProxyAddress("10.0.0.1", 11001)),
        RegisteredProxy(2, ProxyAddress("10.0.0.2", 11001), ProxyAddress("10.0.0.2", 11002)),
    )
    assert [str(a) for a in config.proxy_addresses] == ["10.0.0.1:11001", "10.0.0.2:11001"]
    assert [str(a) for a in config.client_proxy_addresses] == ["10.0.0.1:11001", "10.0.0.2:11002"]
    assert config.proxy_sc_code is None
    assert config.client_sc_code is None
    assert config.worker_sc_code is not None
    assert Cell.one_from_boc(config.worker_sc_code).hash == CODE.hash
    assert config.skipped_proxy_seqnos == ()


def test_boc_bytes_and_cell_give_the_same_config() -> None:
    cell = root_cell()
    assert parse_root_config_cell(cell.to_boc()) == parse_root_config_cell(cell)


@pytest.mark.parametrize(
    ("sv", "expected_mults", "expected_stakes"),
    [
        (0, (10000, 10000, 10000, 10000), (10**9, 10**9)),
        (1, (10000, 10000, 10000, 10000), (3 * 10**9, 4 * 10**9)),
        (2, (10000, 12000, 10000, 14000), (3 * 10**9, 4 * 10**9)),
        (3, (11000, 12000, 13000, 14000), (3 * 10**9, 4 * 10**9)),
    ],
)
def test_older_struct_versions_use_defaults(
    sv: int, expected_mults: tuple[int, ...], expected_stakes: tuple[int, int]
) -> None:
    config = parse_root_config_cell(root_cell(params_cell(sv)))
    assert config.struct_version == sv
    mults = (
        config.prompt_tokens_price_multiplier,
        config.cached_tokens_price_multiplier,
        config.completion_tokens_price_multiplier,
        config.reasoning_tokens_price_multiplier,
    )
    assert mults == expected_mults
    assert (config.min_proxy_stake, config.min_client_stake) == expected_stakes


def test_masterchain_owner_keeps_its_signed_workchain() -> None:
    config = parse_root_config_cell(root_cell(owner=Address("-1:" + "cd" * 32)))
    assert config.owner_address == "-1:" + "cd" * 32


def test_empty_dictionaries() -> None:
    data = (
        begin_cell()
        .store_dict(None)
        .store_dict(None)
        .store_uint(0, 32)
        .store_dict(None)
        .store_dict(None)
        .end_cell()
    )
    config = parse_root_config_cell(root_cell(data=data))
    assert config.registered_proxies == ()
    assert config.proxy_hashes == config.worker_hashes == config.model_hashes == frozenset()


def test_unusable_proxy_entries_are_skipped_like_the_reference_but_listed() -> None:
    data = data_cell(
        {
            1: _proxy_entry(b"10.0.0.1:11001"),
            2: _proxy_entry(b"10.0.0.2:11001", entry_type=1),
            3: _proxy_entry(b"proxy.example:11001"),
            4: _proxy_entry(b"10.0.0.4"),
            5: _proxy_entry(b"\xff\xfe:1"),
            6: _proxy_entry(b"[10.0.0.6:443]"),
        }
    )
    config = parse_root_config_cell(root_cell(data=data))
    assert [p.seqno for p in config.registered_proxies] == [1, 6]
    assert config.proxy_addresses[1] == ProxyAddress("10.0.0.6", 443)
    assert config.skipped_proxy_seqnos == (2, 3, 4, 5)


@pytest.mark.parametrize(
    ("cell_or_bytes", "message"),
    [
        (b"", "could not be read"),
        (b"not a boc at all", "could not be read"),
        (root_cell(owner=None), "not a standard address"),
        (root_cell(params_cell(4)), "struct version 4"),
        (root_cell(params_cell(3, extra_bit=True)), "Extra data after the root params"),
        (root_cell(data=data_cell(extra_bit=True)), "Extra data after the root data cell"),
        (root_cell(extra_bit=True), "Extra data after the root contract data"),
        (root_cell(params_cell(3, price_bytes=9)), "price per token does not fit in 64 bits"),
        (root_cell(params_cell(3, stop_after_delays=True)), "could not be read"),
        (begin_cell().store_address(OWNER).end_cell(), "could not be read"),
        (root_cell(params=begin_cell().end_cell()), "could not be read"),
    ],
)
def test_malformed_root_data(cell_or_bytes: bytes | Cell, message: str) -> None:
    with pytest.raises(RootConfigError, match=message) as info:
        parse_root_config_cell(cell_or_bytes)
    assert isinstance(info.value, UserFacingError)
    assert info.value.hint


def test_truncated_boc_of_a_valid_config() -> None:
    boc = root_cell().to_boc()
    for cut in (1, len(boc) // 2, len(boc) - 1):
        with pytest.raises(RootConfigError):
            parse_root_config_cell(boc[:cut])


# ---- proxy address strings ----


@pytest.mark.parametrize(
    ("text", "worker", "client"),
    [
        ("127.0.0.1:11001", "127.0.0.1:11001", "127.0.0.1:11001"),
        ("127.0.0.1:11001 127.0.0.1:11002", "127.0.0.1:11001", "127.0.0.1:11002"),
        ("[1.2.3.4:5]", "1.2.3.4:5", "1.2.3.4:5"),
    ],
)
def test_proxy_address_forms(text: str, worker: str, client: str) -> None:
    w, c = parse_proxy_address(text)
    assert (str(w), str(c)) == (worker, client)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "::1:80",
        "host:80",
        "1.2.3.4:80 ",
        "1.2.3.4:\uff18\uff10",  # full-width digits
        "300.1.1.1:80",
    ],
)
def test_bad_proxy_addresses(text: str) -> None:
    with pytest.raises(RootConfigError):
        parse_proxy_address(text)


# ---- fake-TON JSON ----

FAKE_OWNER = "0QBgPMq7ye2WRcudRHK_-yjHwMXjeN-UCzAuoo06TR6hmgHV"


def test_reference_fake_ton_config_fixture() -> None:
    text = (traces_dir() / "configs" / "fake-ton-config.json").read_text()
    config = parse_fake_ton_config(text)
    assert config.owner_address == Address(FAKE_OWNER).to_str(is_user_friendly=False)
    assert config.registered_proxies == (
        RegisteredProxy(1, ProxyAddress("127.0.0.1", 11001), ProxyAddress("127.0.0.1", 11002)),
    )
    assert config.proxy_addresses == (ProxyAddress("127.0.0.1", 11001),)
    assert (config.version, config.params_version, config.last_proxy_seqno) == (3, 1, 1)
    assert (config.price_per_token, config.worker_fee_per_token) == (2, 1)
    # The fixed values the reference's pseudo loader uses.
    assert (config.struct_version, config.unique_id, config.is_test) == (1, 13, True)
    assert (config.proxy_delay_before_close, config.client_delay_before_close) == (600, 300)
    assert config.min_proxy_stake == config.min_client_stake == 10**9
    assert config.cached_tokens_price_multiplier == 10000
    assert len(config.proxy_hashes) == len(config.worker_hashes) == 1
    # The fixture says "model_names", which the reference ignores: no model hashes.
    assert config.model_hashes == frozenset()
    assert config.worker_sc_code is not None
    assert Cell.one_from_boc(config.worker_sc_code) is not None
    assert parse_fake_ton_config(json.loads(text)) == config
    assert parse_fake_ton_config(text.encode()) == config


def test_minimal_fake_config_takes_zero_values() -> None:
    config = parse_fake_ton_config({"root_owner_address": FAKE_OWNER})
    assert config.registered_proxies == ()
    assert (config.version, config.price_per_token, config.worker_sc_code) == (0, 0, None)


def test_model_types_are_hashed_without_the_commit_suffix() -> None:
    config = parse_fake_ton_config(
        {"root_owner_address": FAKE_OWNER, "model_types": ["Qwen/Qwen3-8B@abc:def"]}
    )
    assert config.model_hashes == {hashlib.sha256(b"Qwen/Qwen3-8B").digest()}
    assert config.accepts_model("Qwen/Qwen3-8B")


def test_integers_may_be_decimal_strings() -> None:
    config = parse_fake_ton_config({"root_owner_address": FAKE_OWNER, "version": "7"})
    assert config.version == 7


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": "seven"}, "version .* must be an integer"),
        ({"version": 1.5}, "version .* must be an integer"),
        ({"version": True}, "version .* must be an integer"),
        ({"price_per_token": 2**31}, "price_per_token .* 32-bit integer"),
        ({"proxy_hashes": "abc"}, "proxy_hashes .* list of str"),
        ({"proxy_hashes": ["not base64!"]}, "base64 256-bit hashes"),
        ({"worker_hashes": ["AAAA"]}, "base64 256-bit hashes"),
        ({"model_types": [1]}, "model_types .* list of str"),
        ({"registered_proxies": [{"seqno": 1, "address": "localhost:1"}]}, "not an IPv4"),
        ({"registered_proxies": [{"seqno": "x", "address": "1.2.3.4:1"}]}, "seqno"),
        ({"registered_proxies": ["1.2.3.4:1"]}, "registered_proxies"),
        ({"worker_sc_code": "zz"}, "worker_sc_code .* hex-encoded BOC"),
        ({"worker_sc_code": "abcd"}, "worker_sc_code .* hex-encoded BOC"),
        ({"root_owner_address": "not-an-address"}, "not a TON address"),
        ({"root_owner_address": 5}, "root_owner_address .* a string"),
    ],
)
def test_bad_fake_configs(changes: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"root_owner_address": FAKE_OWNER}
    with pytest.raises(RootConfigError, match=message):
        parse_fake_ton_config({**base, **changes})


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", b"\xff\xfe"])
def test_fake_config_that_is_not_a_json_object(text: str | bytes) -> None:
    with pytest.raises(RootConfigError, match="JSON"):
        parse_fake_ton_config(text)


def test_fake_config_from_a_file_path_is_the_callers_job(tmp_path: Path) -> None:
    path = tmp_path / "fake.json"
    path.write_text(json.dumps({"root_owner_address": FAKE_OWNER, "version": 2}))
    assert parse_fake_ton_config(path.read_text()).version == 2
