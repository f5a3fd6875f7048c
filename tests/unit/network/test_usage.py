"""Token counting and cost injection for every answer framing, split at any byte boundary."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.billing import BillingParams
from app.network.answer import TokensUsed
from app.network.usage import AnswerMeter
from tests.unit.network.traces import read_client_responses

TRACE_TOKENS = TokensUsed(34, 16, 135, 15, 200)
USAGE = {
    "prompt_tokens": 34,
    "completion_tokens": 100,
    "total_tokens": 134,
    "prompt_tokens_details": {"cached_tokens": 11},
    "completion_tokens_details": {"reasoning_tokens": 10},
}
COSTS = {"prompt_total_cost": 100, "completion_total_cost": 300, "total_cost": 400}


def _chunk(i: int, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"id": "c", "choices": [{"delta": {"content": f"tok{i}"}}]}
    if usage is not None:
        value["usage"] = usage
    return value


def _line(value: Any) -> bytes:
    return json.dumps(value).encode()


NDJSON = b"".join(_line(_chunk(i)) + b"\n" for i in range(5)) + _line({"usage": USAGE}) + b"\n"
SSE_LF = (
    b"".join(b"data: " + _line(_chunk(i)) + b"\n\n" for i in range(4))
    + b"data: "
    + _line(_chunk(4, USAGE))
    + b"\n\ndata: [DONE]\n\n"
)
SSE_CRLF = SSE_LF.replace(b"\n", b"\r\n")
SSE_CR = SSE_LF.replace(b"\n", b"\r")
JSON_DOC = _line({"id": "c", "object": "chat.completion", "usage": USAGE})
PRETTY_DOC = json.dumps({"id": "c", "usage": USAGE}, indent=2).encode() + b"\n"
SSE_EXTRAS = (
    b": keep-alive comment\n\n"
    b"event: message\nid: 7\ndata: " + _line(_chunk(0)) + b"\n\n"
    b"retry: 1000\n\n"
    b'event: message\ndata: {"id": "c",\ndata:  "usage": ' + _line(USAGE) + b"}\n\n"
    b"data: [DONE]\n\n"
)
FRAMINGS = {
    "ndjson": (NDJSON, "application/json"),
    "sse-lf": (SSE_LF, "text/event-stream"),
    "sse-crlf": (SSE_CRLF, "text/event-stream; charset=utf-8"),
    "sse-cr": (SSE_CR, "text/event-stream"),
    "sse-unlabelled": (SSE_LF, ""),
    "sse-extras": (SSE_EXTRAS, "text/event-stream"),
    "json": (JSON_DOC, "application/json"),
    "json-pretty": (PRETTY_DOC, "application/json"),
}


def _meter(content_type: str = "", coefficient: int = 1500) -> AnswerMeter:
    return AnswerMeter(coefficient, BillingParams(price_per_token=2), content_type)


def _run(
    body_chunks: list[bytes], content_type: str, coefficient: int = 1500
) -> tuple[bytes, AnswerMeter]:
    meter = _meter(content_type, coefficient)
    out = b"".join(meter.feed(chunk) for chunk in body_chunks) + meter.finish()
    return out, meter


def _split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(body)) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(body[start:point])
        start = point
    pieces.append(body[start:])
    return pieces


def _usage_values(out: bytes, framing: str) -> list[dict[str, Any]]:
    """Every ``usage`` object in the output, parsed the way a client would."""
    found = []
    if framing.startswith("sse"):
        normalised = out.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        for event in normalised.split(b"\n\n"):
            data = b"\n".join(
                line[5:].removeprefix(b" ")
                for line in event.split(b"\n")
                if line.startswith(b"data:")
            )
            if data and data != b"[DONE]":
                found.append(json.loads(data))
    elif framing == "ndjson":
        found = [json.loads(line) for line in out.splitlines() if line]
    else:
        found = [json.loads(out)]
    return [value["usage"] for value in found if "usage" in value]


@pytest.mark.parametrize("framing", sorted(FRAMINGS))
def test_every_framing_bills_and_gets_cost_fields(framing: str) -> None:
    body, content_type = FRAMINGS[framing]
    out, meter = _run([body], content_type)
    assert meter.tokens == TRACE_TOKENS
    usages = _usage_values(out, framing)
    assert len(usages) == 1
    assert {k: usages[0][k] for k in COSTS} == COSTS
    assert {k: usages[0][k] for k in USAGE} == USAGE  # the backend's raw numbers stay


@pytest.mark.parametrize("framing", sorted(FRAMINGS))
def test_framing_is_kept(framing: str) -> None:
    body, content_type = FRAMINGS[framing]
    out, _ = _run([body], content_type)
    if framing.startswith("sse"):
        terminator = b"\r\n" if framing == "sse-crlf" else b"\r" if framing == "sse-cr" else b"\n"
        assert out.endswith(b"data: [DONE]" + terminator * 2)
        assert out.count(terminator * 2) == body.count(terminator * 2)
    elif framing == "ndjson":
        assert out.count(b"\n") == body.count(b"\n")
    else:
        assert out.endswith(b"}\n") == body.endswith(b"}\n")


@pytest.mark.parametrize("framing", sorted(FRAMINGS))
def test_chunks_without_usage_pass_through_untouched(framing: str) -> None:
    body, content_type = FRAMINGS[framing]
    out, _ = _run([body], content_type)
    if framing.startswith("sse") or framing == "ndjson":
        # everything before the usage-bearing value is byte-identical
        prefix = body[: body.index(b'"usage"')]
        if framing == "ndjson":
            prefix = prefix[: prefix.rfind(b"\n") + 1]
        else:
            ends = (prefix.rfind(b"\n\n"), prefix.rfind(b"\r\r"), prefix.rfind(b"\n\r\n"))
            prefix = prefix[: max(ends)]
        assert out.startswith(prefix)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_split_gives_the_same_answer_and_counts(data: st.DataObject) -> None:
    framing = data.draw(st.sampled_from(sorted(FRAMINGS)))
    body, content_type = FRAMINGS[framing]
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=12))
    whole, whole_meter = _run([body], content_type)
    split, split_meter = _run(_split(body, cuts), content_type)
    assert split == whole
    assert split_meter.tokens == whole_meter.tokens == TRACE_TOKENS


def test_streamed_chunks_are_forwarded_as_they_arrive() -> None:
    meter = _meter("application/x-ndjson")
    lines = NDJSON.splitlines(keepends=True)
    assert meter.feed(lines[0]) == lines[0]
    assert meter.feed(lines[1]) == lines[1]
    assert meter.feed(lines[2][:10]) == b""  # half a line waits for its end
    assert meter.feed(lines[2][10:]) == lines[2]


def test_sse_events_are_forwarded_as_they_arrive() -> None:
    meter = _meter("text/event-stream")
    event = b"data: " + _line(_chunk(1)) + b"\n\n"
    assert meter.feed(event) is event  # no copy on the fast path
    assert meter.feed(event[:7]) == b""
    assert meter.feed(event[7:]) == event


def test_maxima_across_chunks_and_costs_only_when_raised() -> None:
    first = {"prompt_tokens": 34, "completion_tokens": 50}
    second = {"prompt_tokens": 30, "completion_tokens": 100, "reasoning_tokens": 10}
    repeat = dict(second)
    body = b"".join(_line({"usage": u}) + b"\n" for u in (first, second, repeat))
    out, meter = _run([body], "application/x-ndjson", coefficient=1000)
    assert (meter.raw.prompt, meter.raw.completion, meter.raw.reasoning) == (34, 100, 10)
    values = [json.loads(line) for line in out.splitlines()]
    assert values[0]["usage"]["total_cost"] == 2 * (34 + 50)
    assert values[1]["usage"]["total_cost"] == 2 * (34 + 100)
    assert "total_cost" not in values[2]["usage"]  # nothing new: the reference leaves it alone


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -3},
        {"prompt_tokens": 3.0},
        {"prompt_tokens": True},
        {"prompt_tokens": "3"},
        {"prompt_tokens_details": 5},
        {"prompt_tokens": 2**70},
    ],
)
def test_bad_usage_numbers_count_nothing(usage: dict[str, Any]) -> None:
    body = _line({"usage": usage}) + b"\n"
    out, meter = _run([body], "application/json")
    assert meter.tokens == TokensUsed()
    assert out == body


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json at all\n",
        b'{"usage": {"prompt_tokens": 5}',  # cut off
        b'data: {"usage": broken}\n\n',
        b'{"usage": null}\n',
        b'[{"usage": {"prompt_tokens": 5}}]\n',
        b'{"usage": {"prompt_tokens": NaN}}\n',
        b'\xff\xfe{"usage": 1}\n',
    ],
)
def test_garbage_answers_pass_through_and_bill_nothing(body: bytes) -> None:
    out, meter = _run([body], "")
    assert out == body
    assert meter.tokens == TokensUsed()


def test_usage_with_unicode_content_keeps_it() -> None:
    value = {"choices": [{"delta": {"content": "héllo 😀 \\u escapes"}}], "usage": USAGE}
    body = b"data: " + json.dumps(value).encode() + b"\n\n"
    out, meter = _run([body], "text/event-stream")
    assert meter.tokens == TRACE_TOKENS
    parsed = json.loads(out[6:])
    assert parsed["choices"] == value["choices"]


def test_lone_surrogate_in_usage_chunk_stays_valid_json() -> None:
    body = b'{"content": "\\ud800", "usage": {"prompt_tokens": 2}}\n'
    out, meter = _run([body], "application/json", coefficient=1000)
    assert meter.raw.prompt == 2
    assert json.loads(out)["content"] == "\ud800"


@pytest.mark.parametrize("label", ["json-1", "json-2", "ndjson-1", "ndjson-2", "sse-1", "sse-2"])
def test_reference_backend_answers_bill_like_the_reference(label: str) -> None:
    record = next(r for r in read_client_responses() if r["label"] == label)
    answered = record["backend"]["answered"]
    content_type = dict(answered["headers"])["content-type"]
    chunks = [chunk.encode() for chunk in answered["body_chunks"]]
    out, meter = _run(chunks, content_type)
    # The reference billed SSE 0 tokens (it cannot parse SSE); JSON and NDJSON it got right.
    assert meter.tokens == TRACE_TOKENS
    client_body = record["client_response"]["body"].encode()
    framing = "sse-lf" if content_type == "text/event-stream" else "ndjson"
    ours = _usage_values(out, framing)
    if framing == "ndjson":
        theirs = _usage_values(client_body, framing)
        assert ours == theirs  # same numbers and the same cost fields, key order aside
    else:
        assert {k: ours[0][k] for k in COSTS} == COSTS
        assert out.replace(b"data: ", b"").count(b"\n\n") == client_body.count(b"\n\n")
