"""Bad wire input and malformed objects: each gets a clear TLError, never another exception."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from app.network.tl import (
    TLError,
    TLObject,
    constructor_id,
    decode,
    decode_bare,
    encode,
    encode_bare,
    encode_fields,
)


def _u32(value: int) -> bytes:
    return struct.pack("<I", value)


def _i32(value: int) -> bytes:
    return struct.pack("<i", value)


def _tl_bytes(data: bytes) -> bytes:
    return encode_bare(TLObject("tcp.packet", data=data))


HEADERS = [TLObject("http.header", name="Host", value="127.0.0.1:10000")]
REQUEST = TLObject(
    "http.request",
    method="POST",
    url="/v1/chat/completions",
    http_version="HTTP/1.1",
    headers=HEADERS,
    payload=b'{"model":"x"}',
)
FINAL = TLObject(
    "proxy.queryFinalInfo",
    flags=2,
    tokens_used=TLObject(
        "tokensUsed",
        prompt_tokens_used=1,
        cached_tokens_used=2,
        completion_tokens_used=3,
        reasoning_tokens_used=4,
        total_tokens_used=10,
    ),
    worker_start_time=1.5,
    worker_end_time=2.5,
)
SAMPLES = [
    TLObject("tcp.ping", id=-5),
    TLObject("tcp.packet", data=encode(REQUEST)),
    REQUEST,
    TLObject(
        "proxy.queryAnswerPartEx",
        request_id=bytes(range(32)),
        answer=b"x" * 300,
        flags=1,
        final_info=FINAL,
    ),
    TLObject("worker.proxyHandshakeComplete", is_disabled=True),
    TLObject(
        "worker.paymentStatus",
        signed_payment=TLObject("proxy.signedPayment", data=b"boc"),
        db_tokens=1,
        max_tokens=2,
    ),
]


# ---- decoding ----


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x02\x03"])
def test_input_shorter_than_an_id(data: bytes) -> None:
    with pytest.raises(TLError, match="too short"):
        decode(data)


def test_unknown_constructor() -> None:
    with pytest.raises(TLError, match="unknown constructor id 0xdeadbeef"):
        decode(_u32(0xDEADBEEF) + bytes(8))


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: o.name)
def test_every_truncation_is_rejected(obj: TLObject) -> None:
    wire = encode(obj)
    for cut in range(len(wire)):
        with pytest.raises(TLError):
            decode(wire[:cut])


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: o.name)
@pytest.mark.parametrize("extra", [b"\0", b"\0\0\0\0", b"\x01\x02\x03\x04\x05\x06\x07\x08"])
def test_trailing_bytes_are_rejected(obj: TLObject, extra: bytes) -> None:
    with pytest.raises(TLError, match="trailing bytes"):
        decode(encode(obj) + extra)
    with pytest.raises(TLError, match="trailing bytes"):
        decode_bare(encode_bare(obj) + extra, obj.name)


def test_wrong_bool_id() -> None:
    wire = _u32(constructor_id("worker.proxyHandshakeComplete")) + _u32(0x12345678)
    with pytest.raises(TLError, match="is not a Bool constructor"):
        decode(wire)
    # Another real constructor id in a Bool slot is still not a Bool.
    with pytest.raises(TLError, match="is not a Bool"):
        decode(wire[:4] + _u32(constructor_id("tcp.ping")))


def test_both_bool_ids_decode() -> None:
    head = _u32(constructor_id("worker.proxyHandshakeComplete"))
    assert decode(head + _u32(0x997275B5))["is_disabled"] is True
    assert decode(head + _u32(0xBC799737))["is_disabled"] is False


def _request_with_header_count(count: int) -> bytes:
    wire = encode(REQUEST)
    # The vector count sits after method, url and http_version (each a padded TL string).
    at = 4 + len(_tl_bytes(b"POST")) + len(_tl_bytes(b"/v1/chat/completions"))
    at += len(_tl_bytes(b"HTTP/1.1"))
    assert struct.unpack_from("<i", wire, at)[0] == 1
    return wire[:at] + _i32(count) + wire[at + 4 :]


@pytest.mark.parametrize("count", [2, 1000, 2**31 - 1])
def test_vector_count_larger_than_the_data(count: int) -> None:
    with pytest.raises(TLError):
        decode(_request_with_header_count(count))


def test_absurd_vector_count_is_rejected_before_reading_items() -> None:
    with pytest.raises(TLError, match="exceeds the data"):
        decode(_request_with_header_count(2**31 - 1))


def test_negative_vector_count() -> None:
    with pytest.raises(TLError, match="vector count -1"):
        decode(_request_with_header_count(-1))


def test_zero_vector_count_leaves_trailing_bytes() -> None:
    with pytest.raises(TLError):
        decode(_request_with_header_count(0))


PACKET_ID = _u32(0x9C17BAF8)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x05hel", "runs past the end"),  # length 5, 3 bytes present
        (b"\x05hello\x00", "runs past the end"),  # padding missing
        (b"\x05hello\x00\x01", "non-zero padding"),
        (b"\x03abc" + b"\x00" * 0, None),  # valid, as a control
        (b"\xfe\x05\x00\x00hello\x00\x00\x00", "non-canonical length"),
        (b"\xfe\x00\x01\x00" + b"a" * 10, "runs past the end"),  # 256 bytes announced
        (b"\xfe\xff\xff\xff", "runs past the end"),
        (b"\xff\x05\x00\x00\x00\x00\x00\x00hello\x00\x00\x00", "non-canonical length"),
        (b"\xff\xff\xff\xff\xff\xff\xff\x7f", "runs past the end"),
        (b"\xfe\x01", "ends early"),
        (b"\xff\x00\x00", "ends early"),
    ],
)
def test_length_header_games(body: bytes, message: str | None) -> None:
    if message is None:
        assert decode(PACKET_ID + body)["data"] == b"abc"
        return
    with pytest.raises(TLError, match=message):
        decode(PACKET_ID + body)


def test_long_form_header_is_read_for_254_bytes_and_more() -> None:
    wire = encode(TLObject("tcp.packet", data=b"z" * 300))
    assert wire[4:8] == bytes.fromhex("fe2c0100")
    assert len(wire) == 4 + 304
    assert decode(wire)["data"] == b"z" * 300


def test_boxed_field_holding_a_constructor_of_another_type() -> None:
    # worker.paymentStatus.signed_payment must be a proxy.SignedPayment, not a tcp.ping.
    wire = _u32(constructor_id("worker.paymentStatus")) + encode(TLObject("tcp.ping", id=1))
    wire += bytes(16)
    with pytest.raises(TLError, match=r"is not a proxy\.SignedPayment"):
        decode(wire)


def test_expect_mismatch() -> None:
    wire = encode(TLObject("tcp.ping", id=1))
    with pytest.raises(TLError, match=r"expected worker\.PaymentStatus, got tcp\.ping"):
        decode(wire, expect="worker.PaymentStatus")
    with pytest.raises(TLError, match=r"expected tcp\.pong, got tcp\.ping"):
        decode(wire, expect="tcp.pong")
    with pytest.raises(TLError, match="unknown TL type or combinator"):
        decode(wire, expect="tcp.Nonsense")


def test_a_function_is_not_an_instance_of_its_result_type() -> None:
    wire = encode(REQUEST)
    assert decode(wire, expect="http.request") == REQUEST
    with pytest.raises(TLError, match=r"expected http\.Response"):
        decode(wire, expect="http.Response")


def test_decode_bare_of_unknown_combinator() -> None:
    with pytest.raises(TLError, match="unknown TL combinator"):
        decode_bare(b"", "nope.nope")


def test_decode_accepts_bytearray_and_memoryview() -> None:
    wire = encode(SAMPLES[3])
    assert decode(bytearray(wire)) == SAMPLES[3]
    assert decode(memoryview(wire)) == SAMPLES[3]


def test_error_messages_never_contain_payload_bytes() -> None:
    secret = b"sk-SECRET-prompt-text"
    wire = encode(TLObject("tcp.packet", data=secret))
    for cut in range(len(wire)):
        with pytest.raises(TLError) as info:
            decode(wire[:cut])
        assert "SECRET" not in str(info.value)


# ---- encoding ----

PING_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("tcp.ping", {}, "missing field id"),
    ("tcp.ping", {"id": 1, "extra": 2}, "unexpected fields \\['extra'\\]"),
    ("tcp.ping", {"id": "1"}, "expected an int, got str"),
    ("tcp.ping", {"id": True}, "expected an int, got bool"),
    ("tcp.ping", {"id": 1.0}, "expected an int, got float"),
    ("tcp.ping", {"id": 2**63}, "out of range"),
    ("tcp.ping", {"id": -(2**63) - 1}, "out of range"),
    ("worker.enabledDisabled", {"disabled": 2**31}, "out of range"),
    ("tcp.packet", {"data": "text"}, "expected bytes, got str"),
    (
        "proxy.queryFinalInfo",
        {"flags": 2, "tokens_used": None, "worker_start_time": "1.0", "worker_end_time": 1.0},
        "expected a tokensUsed object",
    ),
    ("tcp.packet", {"data": [1, 2]}, "expected bytes, got list"),
    ("tcp.queryError", {"id": 1, "code": 1, "message": b"x"}, "expected a str, got bytes"),
    ("tcp.queryError", {"id": 1, "code": 1, "message": "\ud800"}, "not encodable"),
    ("worker.proxyHandshakeComplete", {"is_disabled": 1}, "expected a bool, got int"),
    ("proxy.signedPayment", {"data": None}, "expected bytes, got NoneType"),
    ("proxy.queryFinalInfo", {"flags": -1, "tokens_used": None}, "out of range"),
    ("proxy.queryFinalInfo", {"flags": 2**32, "tokens_used": None}, "out of range"),
    (
        "worker.paymentStatus",
        {"signed_payment": b"", "db_tokens": 0, "max_tokens": 0},
        "expected a proxy.SignedPayment",
    ),
    (
        "http.response",
        {
            "http_version": "HTTP/1.1",
            "status_code": 200,
            "reason": "OK",
            "headers": "x",
            "payload": b"",
        },
        "expected a list",
    ),
]


@pytest.mark.parametrize(("name", "fields", "message"), PING_CASES)
def test_malformed_objects_do_not_encode(name: str, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(TLError, match=message):
        encode(TLObject(name, fields))
    with pytest.raises(TLError, match=message):
        encode_fields(name, fields)


def test_int256_must_be_exactly_32_bytes() -> None:
    for size in (0, 31, 33):
        with pytest.raises(TLError, match="exactly 32 bytes"):
            encode(SAMPLES[3].replace(request_id=bytes(size)))


def test_conditional_field_without_its_flag_bit() -> None:
    with pytest.raises(TLError, match="final_info: set but its flags bit is clear"):
        encode(SAMPLES[3].replace(flags=0))


def test_flag_bit_without_its_conditional_field() -> None:
    with pytest.raises(TLError, match="missing field worker_debug"):
        encode(FINAL.replace(flags=3))
    fields = dict(FINAL.fields)
    del fields["worker_end_time"]
    with pytest.raises(TLError, match="missing field worker_end_time"):
        encode(TLObject("proxy.queryFinalInfo", fields))


def test_bare_field_with_the_wrong_constructor() -> None:
    with pytest.raises(TLError, match="expected a tokensUsed object"):
        encode(FINAL.replace(tokens_used=TLObject("tcp.ping", id=1)))
    with pytest.raises(TLError, match=r"expected a http\.header object"):
        encode(REQUEST.replace(headers=[*HEADERS, "Host: x"]))


def test_encode_rejects_non_objects() -> None:
    with pytest.raises(TLError, match="expected a TLObject"):
        encode({"id": 1})  # type: ignore[arg-type]
    with pytest.raises(TLError, match="expected a TLObject"):
        encode_bare(None)  # type: ignore[arg-type]


def test_encode_fields_of_unknown_combinator() -> None:
    with pytest.raises(TLError, match="unknown TL combinator"):
        encode_fields("tcp.nonsense", {})


def test_encode_errors_never_contain_values() -> None:
    secret = "Bearer sk-SECRET"
    with pytest.raises(TLError) as info:
        encode(TLObject("http.header", name="Authorization", value=secret.encode()))
    assert "SECRET" not in str(info.value)


def test_double_must_be_a_number() -> None:
    final = TLObject(
        "proxy.queryFinalInfo",
        flags=2,
        tokens_used=TLObject(
            "tokensUsed",
            prompt_tokens_used=0,
            cached_tokens_used=0,
            completion_tokens_used=0,
            reasoning_tokens_used=0,
            total_tokens_used=0,
        ),
        worker_start_time="1.0",
        worker_end_time=1,
    )
    with pytest.raises(TLError, match="worker_start_time: expected a float, got str"):
        encode(final)
    with pytest.raises(TLError, match="expected a float, got bool"):
        encode(final.replace(worker_start_time=True))
    assert decode(encode(final.replace(worker_start_time=1)))["worker_start_time"] == 1.0
