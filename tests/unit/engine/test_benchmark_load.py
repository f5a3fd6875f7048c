"""The load generator's stream parsing: malformed or failing streams are errors, not numbers."""

from __future__ import annotations

import pytest

from app.engine.throughput import LoadError, LoadRound, RequestSample, _sse_event


def test_sse_lines() -> None:
    assert _sse_event(b"data: [DONE]\n") is None
    assert _sse_event(b": keep-alive\n") is None
    assert _sse_event(b"\n") is None
    assert _sse_event(b'data: {"choices": []}\n') == {"choices": []}


@pytest.mark.parametrize(
    "line", [b"data: {broken\n", b"data: [1, 2]\n", b'data: {"error": {"message": "x"}}\n']
)
def test_bad_stream_events_raise(line: bytes) -> None:
    with pytest.raises(LoadError):
        _sse_event(line)


def test_round_figures() -> None:
    samples = (RequestSample(10, 20, 0.1, 1.0), RequestSample(30, 40, 0.3, 2.0))
    load = LoadRound(concurrency=2, samples=samples, wall_s=2.0)
    assert load.generated_tokens == 60
    assert load.generation_tps == 30.0
    assert load.median_ttft_s == pytest.approx(0.2)
    assert load.prompt_tps == pytest.approx(40 / 0.4)
    assert LoadRound(1, (), 0.0).generation_tps == 0.0


def test_stream_and_served_prompt_rates() -> None:
    samples = (RequestSample(10, 11, 0.5, 1.5), RequestSample(30, 21, 0.5, 1.5))
    load = LoadRound(concurrency=2, samples=samples, wall_s=2.0)
    assert load.stream_tps == pytest.approx(15.0)  # median of 10/1 and 20/1
    assert load.served_prompt_tps == pytest.approx(20.0)
    assert LoadRound(1, (RequestSample(5, 1, 0.1, 0.2),), 1.0).stream_tps == 0.0
