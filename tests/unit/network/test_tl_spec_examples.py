"""The example wire bytes of docs/protocol.md (§2.5, §3.2) and the value encodings it tabulates."""

from __future__ import annotations

import struct

from app.network.tl import TLObject, decode, decode_bare, encode, encode_bare


def test_framed_tcp_connect_example() -> None:
    payload = encode(TLObject("tcp.connect", id=0x0102030405060708))
    assert payload == bytes.fromhex("61427ca5 0807060504030201")
    frame = struct.pack("<Ii", len(payload), 0) + payload
    assert frame == bytes.fromhex("0c000000 00000000 61427ca5 0807060504030201")


def test_string_hello() -> None:
    wire = encode_bare(TLObject("http.header", name="hello", value=""))
    assert wire[:8] == bytes.fromhex("0568656c6c6f0000")
    assert wire[8:] == bytes.fromhex("00000000")  # the empty string: one zero byte padded to 4


def test_string_of_300_bytes() -> None:
    wire = encode_bare(TLObject("tcp.packet", data=b"a" * 300))
    assert wire[:4] == bytes.fromhex("fe2c0100")
    assert len(wire) == 304


def test_length_253_is_the_last_short_form_and_254_the_first_long_one() -> None:
    short = encode_bare(TLObject("tcp.packet", data=b"b" * 253))
    assert short[0] == 253
    assert len(short) == 256
    long = encode_bare(TLObject("tcp.packet", data=b"b" * 254))
    assert long[:4] == bytes.fromhex("fefe0000")
    assert len(long) == 260


def test_padding_covers_header_and_data() -> None:
    for n in range(12):
        wire = encode_bare(TLObject("tcp.packet", data=b"x" * n))
        assert len(wire) == (n + 1 + 3) // 4 * 4
        assert wire[1 + n :] == bytes(len(wire) - 1 - n)


def test_fixed_width_values_are_little_endian() -> None:
    wire = encode_bare(TLObject("tcp.queryError", id=-2, code=0x01020304, message=""))
    assert wire[:8] == (-2).to_bytes(8, "little", signed=True)
    assert wire[8:12] == bytes.fromhex("04030201")
    part = TLObject(
        "proxy.runQueryEx",
        query=b"",
        signed_payment=TLObject("proxy.signedPaymentEmpty"),
        coefficient=1500,
        timeout=108.3,
        request_id=bytes(range(32)),
        flags=0,
    )
    wire = encode(part)
    # id, query (4), boxed signedPaymentEmpty (4), coefficient (8), timeout (8), request_id (32)
    assert wire[8:12] == bytes.fromhex("64ce47b3")
    assert wire[12:20] == (1500).to_bytes(8, "little")
    assert wire[20:28] == struct.pack("<d", 108.3)
    assert wire[28:60] == bytes(range(32))  # int256: raw bytes, no byte swapping
    assert decode(wire) == part


def test_bool_ids() -> None:
    true = encode(TLObject("worker.proxyHandshakeComplete", is_disabled=True))
    false = encode(TLObject("worker.proxyHandshakeComplete", is_disabled=False))
    assert true[4:] == (0x997275B5).to_bytes(4, "little")
    assert false[4:] == (0xBC799737).to_bytes(4, "little")


def test_vectors_are_bare_and_nested_lower_case_types_are_bare() -> None:
    header = TLObject("http.header", name="a", value="b")
    response = TLObject(
        "http.response",
        http_version="",
        status_code=200,
        reason="",
        headers=[header, header],
        payload=b"",
    )
    wire = encode(response)
    # id, http_version (4), status_code (4), reason (4), then the count with no vector id
    assert wire[16:20] == (2).to_bytes(4, "little")
    assert wire[20:28] == encode_bare(header)
    assert wire[28:36] == encode_bare(header)


def test_flags_decide_which_fields_are_on_the_wire() -> None:
    base = {"worker_owner_address": "", "model": "", "coefficient": 1000}
    only_base = encode(TLObject("worker.params", flags=0, **base))
    assert len(only_base) == 4 + 4 + 4 + 4 + 4
    with_both = TLObject(
        "worker.params",
        flags=3,
        is_test=True,
        proxy_cnt=1,
        max_active_requests=60,
        min_proto_version=1,
        max_proto_version=2,
        **base,
    )
    wire = encode(with_both)
    assert len(wire) == len(only_base) + 4 * 5
    assert wire[:4] == (0x869C73ED).to_bytes(4, "little")  # explicit id, not the CRC
    assert decode_bare(encode_bare(with_both), "worker.params") == with_both
    # Unknown flag bits travel unchanged.
    odd = TLObject("worker.params", flags=0x80000000, **base)
    assert decode(encode(odd))["flags"] == 0x80000000


def test_payloads_of_16_mib_and_more_use_the_8_byte_header() -> None:
    data = bytes(1 << 24)
    wire = encode_bare(TLObject("tcp.packet", data=data))
    assert wire[:8] == bytes.fromhex("ff00000001000000")
    assert len(wire) == 8 + (1 << 24)
    assert decode_bare(wire, "tcp.packet")["data"] == data
