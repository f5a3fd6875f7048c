"""TLObject: construction, immutability, value equality, replace, and a repr that hides payloads."""

from __future__ import annotations

import copy
import pickle

import pytest

from app.network.tl import TLError, TLObject, encode


def test_construct_from_mapping_or_keywords() -> None:
    assert TLObject("tcp.ping", {"id": 5}) == TLObject("tcp.ping", id=5)
    # A field called "name" does not clash with the combinator name argument.
    header = TLObject("http.header", name="Host", value="x")
    assert header.name == "http.header"
    assert header["name"] == "Host"


def test_unknown_combinator_is_rejected_at_construction() -> None:
    with pytest.raises(TLError, match=r"unknown TL combinator 'tcp\.nope'"):
        TLObject("tcp.nope", {})


def test_id_name_and_field_access() -> None:
    obj = TLObject("tcp.queryError", id=1, code=602, message="busy")
    assert obj.id == 0x4CD2F602
    assert obj.name == "tcp.queryError"
    assert obj["code"] == 602
    assert obj.get("code") == 602
    assert obj.get("missing", "dflt") == "dflt"
    assert "message" in obj
    assert list(obj) == ["id", "code", "message"]
    assert dict(obj.fields) == {"id": 1, "code": 602, "message": "busy"}
    with pytest.raises(KeyError, match=r"tcp\.queryError has no field 'nope'"):
        obj["nope"]


def test_objects_are_immutable() -> None:
    source = {"id": 1}
    obj = TLObject("tcp.ping", source)
    source["id"] = 2  # the object keeps its own copy
    assert obj["id"] == 1
    with pytest.raises(AttributeError):
        obj.name = "tcp.pong"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del obj.name
    with pytest.raises(TypeError):
        obj.fields["id"] = 3  # type: ignore[index]


def test_replace_returns_a_changed_copy() -> None:
    obj = TLObject("tcp.queryError", id=1, code=602, message="busy")
    changed = obj.replace(code=652, message="timeout")
    assert changed["code"] == 652
    assert obj["code"] == 602
    assert changed != obj
    assert changed.replace(code=602, message="busy") == obj


def test_equality_and_hash_by_value() -> None:
    a = TLObject(
        "http.response",
        http_version="HTTP/1.1",
        status_code=200,
        reason="OK",
        headers=[TLObject("http.header", name="a", value="b")],
        payload=b"",
    )
    b = TLObject("http.response", dict(a.fields))
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != TLObject("tcp.ping", id=1)
    assert a != "not an object"
    assert TLObject("tcp.ping", id=1) != TLObject("tcp.pong", id=1)


def test_repr_never_shows_payloads_or_header_values() -> None:
    request = TLObject(
        "http.request",
        method="POST",
        url="/v1/chat/completions?key=SECRET-URL",
        http_version="HTTP/1.1",
        headers=[TLObject("http.header", name="Authorization", value="Bearer SECRET-KEY")],
        payload=b'{"messages":[{"content":"SECRET prompt"}]}',
    )
    packet = TLObject("tcp.packet", data=encode(request))
    for obj in (request, packet):
        text = repr(obj)
        assert "SECRET" not in text
    text = repr(request)
    assert "'POST'" in text
    assert "<42 bytes>" in text
    assert "'HTTP/1.1'" in text


def test_repr_shows_public_addresses_and_numbers() -> None:
    params = TLObject(
        "worker.params",
        flags=0,
        worker_owner_address="UQAuz15H1ZHrZ_psVrAra7HealMIVeFq0wguqlmFno1f3B-m",
        model="Qwen/Qwen3-8B",
        coefficient=1500,
    )
    text = repr(params)
    assert "UQAuz15H1ZHrZ_psVrAra7HealMIVeFq0wguqlmFno1f3B-m" in text
    assert "coefficient=1500" in text
    assert repr(TLObject("worker.updatePaymentStatus")) == "TLObject('worker.updatePaymentStatus')"


def test_repr_hides_long_public_strings() -> None:
    text = repr(
        TLObject(
            "http.response",
            http_version="H" * 500,
            status_code=1,
            reason="",
            headers=[],
            payload=b"",
        )
    )
    assert "HHHH" not in text
    assert "<str, 500 chars>" in text


def test_repr_of_values_outside_the_tl_types_shows_only_their_type() -> None:
    odd = TLObject("tcp.ping", id={"secret": "SECRET"})
    assert repr(odd) == "TLObject('tcp.ping', id=<dict>)"


def test_copy_deepcopy_and_pickle_keep_the_value() -> None:
    obj = TLObject(
        "http.request",
        method="GET",
        url="/",
        http_version="HTTP/1.1",
        headers=[TLObject("http.header", name="a", value="b")],
        payload=b"",
    )
    for clone in (copy.copy(obj), copy.deepcopy(obj), pickle.loads(pickle.dumps(obj))):  # noqa: S301
        assert clone == obj
