"""Request-body validation of the engine server: every bad input gets a 400 with a clear reason."""

from __future__ import annotations

import json

import pytest

from app.engine.server.requests import RequestError, SamplingParams, parse_body


def body(**fields: object) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": "hi"}], **fields}).encode()


def test_valid_chat_request_is_parsed() -> None:
    parsed = parse_body(
        body(
            model="m",
            max_tokens=5,
            stop="END",
            stream=True,
            stream_options={"include_usage": True},
            temperature=0,
            seed=-1,
        ),
        "chat",
    )
    assert parsed.model == "m"
    assert parsed.max_tokens == 5
    assert parsed.stop == ("END",)
    assert parsed.stream
    assert parsed.include_usage
    assert parsed.sampling.temperature == 0.0
    assert parsed.sampling.seed == 0xFFFFFFFF
    assert parsed.messages == ({"role": "user", "content": "hi"},)


def test_defaults_follow_openai() -> None:
    parsed = parse_body(body(), "chat")
    assert parsed.sampling == SamplingParams()
    assert parsed.max_tokens is None
    assert not parsed.stream


def test_text_parts_are_joined() -> None:
    raw = json.dumps(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                }
            ]
        }
    ).encode()
    assert parse_body(raw, "chat").messages[0]["content"] == "ab"


def test_completion_prompt_forms() -> None:
    assert parse_body(b'{"prompt": "x"}', "completion").prompt_text == "x"
    assert parse_body(b'{"prompt": ["x"]}', "completion").prompt_text == "x"
    assert parse_body(b'{"prompt": [1, 2, 3]}', "completion").prompt_tokens == (1, 2, 3)


def test_max_completion_tokens_is_the_newer_name() -> None:
    assert parse_body(body(max_completion_tokens=7, max_tokens=3), "chat").max_tokens == 7


def test_repr_hides_the_prompt() -> None:
    parsed = parse_body(b'{"prompt": "my secret question"}', "completion")
    assert "secret" not in repr(parsed)


@pytest.mark.parametrize(
    ("raw", "endpoint", "param"),
    [
        (b"{not json", "chat", None),
        (b"\xff\xfe", "chat", None),
        (b"[1, 2]", "chat", None),
        (body(max_tokens=0), "chat", "max_tokens"),
        (body(max_tokens=-5), "chat", "max_tokens"),
        (body(max_tokens="10"), "chat", "max_tokens"),
        (body(max_tokens=True), "chat", "max_tokens"),
        (body(max_completion_tokens=0), "chat", "max_completion_tokens"),
        (body(n=2), "chat", "n"),
        (body(temperature=3), "chat", "temperature"),
        (body(temperature="hot"), "chat", "temperature"),
        (body(top_p=1.5), "chat", "top_p"),
        (body(top_k=1.5), "chat", "top_k"),
        (body(stop=["a"] * 9), "chat", "stop"),
        (body(stop=[""]), "chat", "stop"),
        (body(stop=5), "chat", "stop"),
        (body(model=5), "chat", "model"),
        (b'{"messages": []}', "chat", "messages"),
        (b'{"messages": "hi"}', "chat", "messages"),
        (b'{"messages": [{"content": "hi"}]}', "chat", "messages[0]"),
        (b'{"messages": [{"role": "user", "content": 5}]}', "chat", "messages[0]"),
        (
            b'{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
            "chat",
            "messages[0]",
        ),
        (b'{"prompt": ""}', "completion", "prompt"),
        (b'{"prompt": ["a", "b"]}', "completion", "prompt"),
        (b'{"prompt": [1, -2]}', "completion", "prompt"),
        (b"{}", "completion", "prompt"),
    ],
)
def test_bad_input_is_rejected_with_400(raw: bytes, endpoint: str, param: str | None) -> None:
    with pytest.raises(RequestError) as caught:
        parse_body(raw, endpoint)  # type: ignore[arg-type]
    assert caught.value.status == 400
    assert caught.value.param == param
    assert caught.value.body()["error"]["message"] == caught.value.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("logprobs", True),
        ("echo", True),
        ("best_of", 3),
        ("suffix", True),
        ("chat_template_kwargs", {"enable_thinking": "yes"}),
        ("chat_template_kwargs", {"other": True}),
        ("chat_template_kwargs", ["enable_thinking"]),
        ("tools", [{"type": "function", "function": {"name": "f"}}]),
        ("logit_bias", {"50": 10}),
        ("response_format", {"type": "json_object"}),
    ],
)
def test_unsupported_features_are_refused_not_ignored(field: str, value: object) -> None:
    with pytest.raises(RequestError) as caught:
        parse_body(body(**{field: value}), "chat")
    assert caught.value.status == 400
    assert caught.value.param == field


def test_harmless_defaults_of_unsupported_features_pass() -> None:
    parsed = parse_body(
        body(logprobs=False, tools=[], response_format={"type": "text"}, stream_options=None),
        "chat",
    )
    assert not parsed.include_usage


def test_fields_cocoon_forwards_are_accepted() -> None:
    parsed = parse_body(
        body(
            top_logprobs=2,
            parallel_tool_calls=False,
            reasoning_effort="low",
            verbosity="low",
            chat_template_kwargs={"enable_thinking": False},
            best_of=1,
            skip_special_tokens=True,
            stream_options={"include_usage": True, "include_obfuscation": False},
        ),
        "chat",
    )
    assert parsed.enable_thinking is False
    assert parsed.include_usage
    assert parse_body(body(chat_template_kwargs={}), "chat").enable_thinking is None
