"""Property tests: schema-generated values round-trip through every combinator; decoding random
or mutated bytes never raises anything but TLError."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.network.tl import (
    SCHEMA,
    TLError,
    TLObject,
    decode,
    decode_bare,
    encode,
    encode_bare,
    encode_fields,
    encode_query_answer_part,
)
from app.network.tl.schema import Combinator, TypeRef

_BINARY = st.one_of(
    st.binary(max_size=12),
    st.binary(min_size=250, max_size=260),  # around the 1-byte / 4-byte length header boundary
)
# Strings from arbitrary bytes exercise the surrogateescape path for invalid UTF-8.
_TEXT = st.one_of(st.text(max_size=12), _BINARY.map(lambda b: b.decode("utf-8", "surrogateescape")))
_BUILTINS: dict[str, st.SearchStrategy[Any]] = {
    "#": st.integers(0, 2**32 - 1),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "double": st.floats(allow_nan=False),
    "int128": st.binary(min_size=16, max_size=16),
    "int256": st.binary(min_size=32, max_size=32),
    "string": _TEXT,
    "bytes": _BINARY,
}


def type_strategy(ref: TypeRef) -> st.SearchStrategy[Any]:
    if ref.kind == "builtin":
        return _BUILTINS[ref.name]
    if ref.kind == "bool":
        return st.booleans()
    if ref.kind == "bare":
        return combinator_strategy(SCHEMA.by_name[ref.name])
    if ref.kind == "boxed":
        return st.one_of([combinator_strategy(c) for c in SCHEMA.constructors_of[ref.name]])
    assert ref.element is not None
    return st.lists(type_strategy(ref.element), max_size=3)


def combinator_strategy(comb: Combinator) -> st.SearchStrategy[TLObject]:
    """Objects of ``comb`` whose conditional fields are present exactly when their bit is set."""

    @st.composite
    def build(draw: st.DrawFn) -> TLObject:
        values: dict[str, Any] = {}
        for field in comb.fields:
            if field.condition is not None:
                flags_name, bit = field.condition
                if not values[flags_name] >> bit & 1:
                    continue
            values[field.name] = draw(type_strategy(field.type))
        return TLObject(comb.name, values)

    return build()


_NAMES = sorted(SCHEMA.by_name)
_ANY_OBJECT = st.one_of([combinator_strategy(SCHEMA.by_name[n]) for n in _NAMES])


@pytest.mark.parametrize("name", _NAMES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_combinator_round_trips(name: str, data: st.DataObject) -> None:
    comb = SCHEMA.by_name[name]
    obj = data.draw(combinator_strategy(comb))
    wire = encode(obj)
    assert wire[:4] == comb.id.to_bytes(4, "little")
    assert len(wire) % 4 == 0
    assert decode(wire) == obj
    assert decode(wire, expect=name) == obj
    if not comb.is_function:
        assert decode(wire, expect=comb.result_type) == obj
    assert encode_fields(name, obj.fields) == wire
    bare = encode_bare(obj)
    assert bare == wire[4:]
    assert decode_bare(bare, name) == obj


@settings(max_examples=200, deadline=None)
@given(
    request_id=st.binary(min_size=32, max_size=32),
    answer=_BINARY,
    final_info=st.none() | combinator_strategy(SCHEMA.by_name["proxy.queryFinalInfo"]),
    extra_flags=st.integers(0, 2**31 - 1).map(lambda f: f & ~1),
)
def test_hot_path_part_encoder_matches_the_generic_encoder(
    request_id: bytes, answer: bytes, final_info: TLObject | None, extra_flags: int
) -> None:
    flags = extra_flags | (1 if final_info is not None else 0)
    fields: dict[str, Any] = {"request_id": request_id, "answer": answer, "flags": flags}
    if final_info is not None:
        fields["final_info"] = final_info
    expected = encode(TLObject("proxy.queryAnswerPartEx", fields))
    assert encode_query_answer_part(request_id, answer, flags, final_info) == expected


def _decode_or_reject(data: bytes) -> None:
    """Decoding either fails with TLError or yields an object that re-encodes to the same bytes."""
    try:
        obj = decode(data)
    except TLError:
        return
    assert encode(obj) == data


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=80))
def test_random_bytes_only_ever_raise_tl_error(data: bytes) -> None:
    _decode_or_reject(data)


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=76).map(lambda b: bytes.fromhex("f8ba179c") + b))
def test_random_bodies_after_a_real_id_only_ever_raise_tl_error(data: bytes) -> None:
    _decode_or_reject(data)


@st.composite
def _mutated_encoding(draw: st.DrawFn) -> bytes:
    wire = bytearray(encode(draw(_ANY_OBJECT)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, len(wire)))
        if op == "flip" and pos < len(wire):
            wire[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and pos < len(wire):
            wire[pos] = draw(st.sampled_from([0x00, 0xFE, 0xFF, 0x7F, 0x80]))
        elif op == "cut":
            del wire[pos:]
        elif op == "insert":
            wire[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif pos < len(wire):
            del wire[pos : pos + draw(st.integers(1, 8))]
    return bytes(wire)


@pytest.mark.slow
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_mutated_encoding())
def test_mutated_encodings_only_ever_raise_tl_error(data: bytes) -> None:
    _decode_or_reject(data)
    for name in ("tcp.packet", "proxy.queryFinalInfo", "http.response"):
        try:
            obj = decode_bare(data, name)
        except TLError:
            continue
        assert encode_bare(obj) == data
