"""The .tl parser: the bundled schema's shape, and clear errors for declarations it cannot use."""

from __future__ import annotations

import pytest

from app.network.tl import SCHEMA, TLError, TLSchemaError
from app.network.tl.codec import _Compiler
from app.network.tl.schema import Schema, TypeRef, parse_schema

_BOOL = "boolTrue = Bool;\nboolFalse = Bool;\n"


def test_bundled_schema_field_types() -> None:
    params = SCHEMA.by_name["worker.params"]
    assert [f.name for f in params.fields][:4] == [
        "flags",
        "worker_owner_address",
        "model",
        "coefficient",
    ]
    is_test = params.fields[4]
    assert is_test.type == TypeRef("bool", "Bool")
    assert is_test.condition == ("flags", 0)
    assert params.fields[-1].condition == ("flags", 1)
    connected = SCHEMA.by_name["worker.connectedToProxy"]
    assert connected.fields[0].type == TypeRef("bare", "proxy.params")
    request = SCHEMA.by_name["http.request"]
    assert request.is_function
    headers = request.fields[3].type
    assert headers.kind == "vector"
    assert not headers.boxed_vector
    assert headers.element == TypeRef("bare", "http.header")
    payment = SCHEMA.by_name["worker.paymentStatus"].fields[0].type
    assert payment == TypeRef("boxed", "proxy.SignedPayment")
    assert {c.name for c in SCHEMA.constructors_of["proxy.SignedPayment"]} == {
        "proxy.signedPayment",
        "proxy.signedPaymentEmpty",
    }


def test_sections_and_comments() -> None:
    combs = parse_schema(
        _BOOL
        + "// a comment; with a semicolon\n"
        + "a.x id:long = a.X; // trailing\n---functions---\na.get id:long\n  = a.X;\n"
        + "---types---\na.y = a.X;\n"
    )
    kinds = {c.name: c.is_function for c in combs}
    assert kinds == {
        "boolTrue": False,
        "boolFalse": False,
        "a.x": False,
        "a.get": True,
        "a.y": False,
    }


def test_boxed_vector_and_multi_line_declarations_compile() -> None:
    schema = Schema(
        parse_schema(_BOOL + "a.x ids:(Vector long)\n flags:#\n s:flags.3?(vector string) = a.X;")
    )
    compiled = _Compiler(schema).compile_all()
    assert set(compiled) == {"boolTrue", "boolFalse", "a.x"}
    assert schema.by_name["a.x"].fields[0].type.boxed_vector
    codec = compiled["a.x"]
    out = bytearray()
    codec.encode_fields({"ids": [1, -1], "flags": 8, "s": ["x"]}, out)
    vector_id = (0x1CB5C415).to_bytes(4, "little")
    assert bytes(out[:8]) == vector_id + (2).to_bytes(4, "little")
    values, end = codec.decode_fields(bytes(out), 0)
    assert (values, end) == ({"ids": [1, -1], "flags": 8, "s": ["x"]}, len(out))
    with pytest.raises(TLError, match="expected a vector constructor"):
        codec.decode_fields(bytes(4) + bytes(out[4:]), 0)
    with pytest.raises(TLError, match="ends early"):
        codec.decode_fields(bytes(out[:2]), 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a.x id:long", "unterminated"),
        ("a.x id:long ---functions---", "unterminated"),
        ("a.x id:long\n---functions---", "unterminated"),
        ("a.x id:long;", "without a result type"),
        ("a.x id:long = a.x;", "without a result type"),
        ("= A;", "without a name"),
        ("a-x id:long = A;", "bad combinator name"),
        ("a.x #id:long = A;", "bad field"),
        ("a.x id:(vector long = A;", "unbalanced"),
        ("a.x id:vector long) = A;", "unbalanced"),
        ("a.x id:{t:Type} = A;", "unsupported type"),
        ("a.x id:long id:int = A;", "appears twice"),
        ("a.x f:flags.0?int = A;", "no preceding flags"),
        ("a.x flags:int f:flags.0?int = A;", "no preceding flags"),
        ("a.x v:b.unknown = A;", "unknown bare constructor"),
        ("a.x v:B.Unknown = A;", "has no constructors"),
        ("a.x = A;\na.x = B;", "declared twice"),
        ("a.x#00000001 = A;\na.y#00000001 = A;", "share id"),
        ("---functions---\na.f = A;\n---types---\nb.x v:a.f = B;\n", "unknown bare constructor"),
    ],
)
def test_unusable_declarations(text: str, message: str) -> None:
    with pytest.raises(TLSchemaError, match=message):
        Schema(parse_schema(_BOOL + text))


def test_bool_needs_both_constructors() -> None:
    with pytest.raises(TLSchemaError, match="boolTrue and boolFalse"):
        Schema(parse_schema("boolTrue = Bool;\na.x b:Bool = A;"))


def test_recursive_types_are_refused() -> None:
    schema = Schema(parse_schema(_BOOL + "a.x next:a.y = A;\na.y back:a.x = A;"))
    with pytest.raises(TLSchemaError, match="recursive"):
        _Compiler(schema).compile_all()
