"""Request validation and rewriting: the reference's allow-list, codes and messages; bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.network.request_validation import (
    RequestRejected,
    base_model_name,
    request_path,
    validate_head,
    validate_request,
)
from tests.unit.network.traces import read_client_responses

MODEL = "Qwen/Qwen3-8B"
CHAT = "/v1/chat/completions"


def _chat(**fields: Any) -> bytes:
    return json.dumps(
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **fields}
    ).encode()


def _rejected(url: str, payload: bytes, model: str = MODEL, **kwargs: Any) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        validate_request(url, payload, model, **kwargs)
    assert caught.value.code == 621
    return caught.value


def _valid(url: str, payload: bytes) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(validate_request(url, payload, MODEL))
    return result


def test_model_base_name_and_path() -> None:
    assert base_model_name("Qwen/Qwen3-8B@abc:123") == "Qwen/Qwen3-8B"
    assert base_model_name("plain") == "plain"
    assert request_path("/v1/completions") == "/v1/completions"
    assert request_path("http://host/v1/completions") == "//host/v1/completions"


@pytest.mark.parametrize(
    "url",
    [
        "/v1/models",
        "/v1/chat/completions/",
        "v1/chat/completions",
        "http://h/v1/chat/completions",
        "",
    ],
)
def test_bad_path_is_an_unsupported_method(url: str) -> None:
    assert _rejected(url, _chat()).message == "unsupported method"


def test_query_for_another_model_is_refused() -> None:
    payload = _chat(model="Qwen/Qwen3-14B")
    assert _rejected(CHAT, payload).message == "model name mismatch"


def test_full_model_name_with_commit_is_not_the_base_name() -> None:
    assert _rejected(CHAT, _chat(model=MODEL + "@abc")).message == "model name mismatch"


def test_unknown_field_is_refused_with_the_reference_message() -> None:
    assert _rejected(CHAT, _chat(foo_bar=1)).message == "unknown option 'foo_bar' in request"


@pytest.mark.parametrize(
    "field", ["tools", "tool_choice", "logprobs", "logit_bias", "seed", "user", "store"]
)
def test_chat_fields_outside_the_allow_list_are_refused(field: str) -> None:
    assert _rejected(CHAT, _chat(**{field: 1})).message == f"unknown option '{field}' in request"


def test_unknown_field_name_in_message_is_short_and_printable() -> None:
    message = _rejected(CHAT, _chat(**{"x\n" * 100: 1})).message
    assert "\n" not in message
    assert len(message) < 120


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'"text"',
        b"null",
        b'{"model": "a",',
        b"\xff\xfe{}",
        b'{"a": NaN}',
    ],
)
def test_non_json_or_non_object_body_is_refused(payload: bytes) -> None:
    assert _rejected(CHAT, payload).message == "expected json object"


def test_duplicate_fields_are_refused() -> None:
    payload = b'{"model": "Qwen/Qwen3-8B", "messages": [], "model": "Qwen/Qwen3-8B"}'
    assert _rejected(CHAT, payload).message == "duplicate 'model' field"


def test_body_size_limit() -> None:
    payload = _chat(stop="x" * 2000)
    message = _rejected(CHAT, payload, max_body_bytes=1000).message
    assert message == "request body is larger than 1000 bytes"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"messages": "hi"}, "messages must be an array"),
        ({"model": 5}, "model must be a string"),
        ({"frequency_penalty": 2.5}, "frequency_penalty must be a number between -2.0 and 2.0"),
        ({"frequency_penalty": "1"}, "frequency_penalty must be a number between -2.0 and 2.0"),
        ({"max_tokens": -1}, "max_completion_tokens must be a non-negative number"),
        ({"max_completion_tokens": 1.5}, "max_completion_tokens must be a non-negative number"),
        ({"n": 0}, "n must be a positive number"),
        ({"stream": "yes"}, "stream must be a boolean"),
        ({"stream_options": []}, "stream_options must be an object"),
        ({"stream_options": {"other": True}}, "unknown option 'other' in stream_options"),
        (
            {"stream_options": {"include_obfuscation": 1}},
            "stream_options.include_obfuscation must be a boolean",
        ),
        ({"temperature": True}, "temperature must be a number"),
        ({"top_logprobs": -1}, "top_logprobs must be a number"),
        (
            {"chat_template_kwargs": {"enable_thinking": 1}},
            "chat_template_kwargs.enable_thinking must be a boolean",
        ),
        (
            {"chat_template_kwargs": {"x": True}},
            "unknown suboption 'x' in chat_template_kwargs in request",
        ),
        ({"chat_template_kwargs": 1}, "chat_template_kwargs must be an object"),
    ],
)
def test_chat_field_checks(fields: dict[str, Any], message: str) -> None:
    assert _rejected(CHAT, _chat(**fields)).message == message


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"model": MODEL}, "missing required field 'messages'"),
        ({"messages": []}, "missing required field 'model'"),
    ],
)
def test_missing_required_fields(payload: dict[str, Any], message: str) -> None:
    assert _rejected(CHAT, json.dumps(payload).encode()).message == message


def test_first_error_in_sorted_key_order_wins() -> None:
    # nlohmann walks keys sorted: 'a_unknown' comes before 'temperature'.
    payload = _chat(temperature="hot", a_unknown=1)
    assert _rejected(CHAT, payload).message == "unknown option 'a_unknown' in request"


def test_completions_allow_list() -> None:
    payload = json.dumps(
        {"model": MODEL, "prompt": "Once", "seed": 3, "echo": False, "best_of": 1}
    ).encode()
    assert _valid("/v1/completions", payload)["seed"] == 3
    assert _rejected("/v1/completions", _chat()).message == "unknown option 'messages' in request"
    no_prompt = json.dumps({"model": MODEL}).encode()
    assert _rejected("/v1/completions", no_prompt).message == "missing required field 'prompt'"
    bad_seed = json.dumps({"model": MODEL, "prompt": "x", "seed": 1.5}).encode()
    assert _rejected("/v1/completions", bad_seed).message == "seed must be an integer"


def test_stream_gets_usage_reporting() -> None:
    assert _valid(CHAT, _chat(stream=True))["stream_options"] == {"include_usage": True}


def test_include_usage_false_is_forced_true() -> None:
    body = _valid(CHAT, _chat(stream=True, stream_options={"include_usage": False}))
    assert body["stream_options"] == {"include_usage": True}


def test_stream_options_without_stream_turns_streaming_on() -> None:
    assert _valid(CHAT, _chat(stream_options={}))["stream"] is True


def test_non_streaming_request_is_not_rewritten_beyond_key_order() -> None:
    body = _valid(CHAT, _chat(stream=False, temperature=0.5, max_tokens=10))
    assert "stream_options" not in body
    assert body["max_tokens"] == 10


def test_output_is_compact_with_sorted_keys() -> None:
    out = validate_request(CHAT, _chat(temperature=0.2, max_tokens=5), MODEL)
    assert out == (
        b'{"max_tokens":5,"messages":[{"content":"hi","role":"user"}],'
        b'"model":"Qwen/Qwen3-8B","temperature":0.2}'
    )


def test_unicode_content_survives() -> None:
    payload = json.dumps(
        {"model": MODEL, "messages": [{"content": "héllo 😀"}]}, ensure_ascii=False
    )
    out = validate_request(CHAT, payload.encode(), MODEL)
    assert "héllo 😀".encode() in out


@pytest.mark.parametrize("label", ["json-1", "json-2", "ndjson-1", "ndjson-2", "sse-1", "sse-2"])
def test_rewrites_byte_for_byte_like_the_reference(label: str) -> None:
    record = next(r for r in read_client_responses() if r["label"] == label)
    client = record["client_request"]
    out = validate_request(client["path"], client["body"].encode(), MODEL)
    assert out == record["backend"]["received"]["body"].encode()


def test_trace_refusals() -> None:
    records = {r["label"]: r for r in read_client_responses()}
    unknown = records["unknown-field"]["client_request"]
    assert (
        _rejected(unknown["path"], unknown["body"].encode()).message
        == "unknown option 'foo_bar' in request"
    )
    wrong = records["wrong-model"]["client_request"]
    assert _rejected(wrong["path"], wrong["body"].encode()).message == "model name mismatch"


@pytest.mark.parametrize(
    ("method", "headers", "message"),
    [
        ("GET", (), "unsupported http method"),
        ("POST /x HTTP/1.1\r\nX:", (), "unsupported http method"),
        ("POST", (("X-Evil", "a\r\nInjected: 1"),), "invalid http header"),
        ("POST", (("Bad Name", "v"),), "invalid http header"),
        ("POST", (("", "v"),), "invalid http header"),
        ("POST", (("X-Euro", "€"),), "invalid http header"),
        ("POST", (("X-Nul", "a\x00b"),), "invalid http header"),
        ("POST", tuple((f"X-{i}", "v") for i in range(101)), "too many http headers"),
    ],
)
def test_bad_request_heads_are_refused(
    method: str, headers: tuple[tuple[str, str], ...], message: str
) -> None:
    with pytest.raises(RequestRejected) as caught:
        validate_head(method, headers)
    assert (caught.value.code, caught.value.message) == (621, message)


def test_ordinary_request_head_passes() -> None:
    validate_head("POST", (("Content-Type", "application/json"), ("X-Name", "café\tok")))
