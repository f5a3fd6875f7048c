"""RequestServer end to end with the mock backend on loopback: answers, billing, errors, limits."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.core.billing import BillingParams
from app.devnet.mock_backend import MockBackend, MockBackendConfig
from app.engine.endpoint import BackendEndpoint
from app.network.answer import FinalInfo, Headers, HttpRequest, QueryContext, TokensUsed
from app.network.backend_client import BackendClient
from app.network.request_server import RequestServer, ServingStatus

MODEL = "Qwen/Qwen3-8B"
TRACE_TOKENS = TokensUsed(34, 16, 135, 15, 200)


@dataclass
class RecordingSink:
    """Records every sink call; ``gate`` (when set) makes ``part`` wait, as a slow proxy would."""

    calls: list[tuple[str, Any]] = field(default_factory=list)
    first_part: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Event | None = None

    async def head(
        self,
        status: int,
        reason: str,
        headers: Headers,
        http_version: str = "HTTP/1.1",
        final: FinalInfo | None = None,
    ) -> None:
        self.calls.append(("head", (status, reason, headers, http_version, final)))

    async def part(self, data: bytes, final: FinalInfo | None = None) -> None:
        self.calls.append(("part", (data, final)))
        self.first_part.set()
        if self.gate is not None:
            await self.gate.wait()

    async def error(self, code: int, message: str, final: FinalInfo) -> None:
        self.calls.append(("error", (code, message, final)))

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]

    @property
    def body(self) -> bytes:
        return b"".join(args[0] for kind, args in self.calls if kind == "part")

    @property
    def final(self) -> FinalInfo:
        kind, args = self.calls[-1]
        final: FinalInfo | None = args[2] if kind == "error" else args[-1]
        assert final is not None
        return final

    def headers(self) -> dict[str, str]:
        return dict(self.calls[0][1][2])


def chat(**fields: Any) -> HttpRequest:
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **fields}
    return HttpRequest(
        "POST",
        "/v1/chat/completions",
        "HTTP/1.1",
        (
            ("Host", "127.0.0.1:10000"),
            ("Content-Type", "application/json"),
            ("Content-Length", "1"),
        ),
        json.dumps(payload).encode(),
    )


def query(n: int = 1, **changes: Any) -> QueryContext:
    return QueryContext(
        **{"request_id": bytes([n]) * 32, "coefficient": 1500, "timeout": 10.0, **changes}
    )


@pytest.fixture
async def server(mock: MockBackend) -> AsyncIterator[RequestServer]:
    rs = RequestServer(
        mock.endpoint, model=MODEL + "@abc:def", billing=BillingParams(price_per_token=2)
    )
    await rs.start()
    yield rs
    await rs.aclose()


async def test_streamed_answer_is_relayed_and_billed(
    server: RequestServer, mock: MockBackend
) -> None:
    sink = RecordingSink()
    record = await server.serve(query(), chat(stream=True), sink)
    assert sink.kinds[0] == "head"
    assert set(sink.kinds[1:]) == {"part"}
    status, reason, headers, version, final = sink.calls[0][1]
    assert (status, reason, version, final) == (200, "OK", "HTTP/1.1", None)
    names = [name for name, _ in headers]
    assert names[-4:] == [
        "Connection",
        "X-Cocoon-Worker-Start",
        "X-Cocoon-Worker-End",
        "Transfer-Encoding",
    ]
    assert "content-length" not in [n.lower() for n in names]
    assert float(sink.headers()["X-Cocoon-Worker-Start"]) <= float(
        sink.headers()["X-Cocoon-Worker-End"]
    )
    lines = sink.body.splitlines()
    assert len(lines) == 6
    assert json.loads(lines[-1])["usage"]["total_cost"] == 400
    assert sink.final.tokens_used == TRACE_TOKENS
    assert sink.final.flags == 2
    assert record.status == "ok"
    assert record.tokens == TRACE_TOKENS
    assert (record.prompt_tokens, record.cached_tokens) == (34, 11)
    assert record.earned_nanotons == 200
    assert record.answer_bytes == len(sink.body)
    sent = json.loads(mock.received[-1].body)
    assert sent["stream_options"] == {"include_usage": True}


async def test_parts_go_out_before_the_backend_finishes(
    server: RequestServer, mock: MockBackend
) -> None:
    mock.config = MockBackendConfig(mode="hang_body")
    sink = RecordingSink()
    task = asyncio.create_task(server.serve(query(timeout=30.0), chat(stream=True), sink))
    await sink.first_part.wait()  # the first line arrived while the backend still streams
    assert sink.kinds == ["head", "part"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_sse_is_billed_unlike_the_reference(server: RequestServer, mock: MockBackend) -> None:
    mock.config = MockBackendConfig(mode="sse", chunks=4)
    sink = RecordingSink()
    await server.serve(query(), chat(stream=True), sink)
    assert sink.final.tokens_used == TRACE_TOKENS
    assert sink.body.endswith(b"data: [DONE]\n\n")
    assert b'"total_cost":400' in sink.body


async def test_json_answer_is_one_final_part(server: RequestServer, mock: MockBackend) -> None:
    mock.config = MockBackendConfig(mode="json")
    sink = RecordingSink()
    await server.serve(query(), chat(), sink)
    assert sink.kinds == ["head", "part"]
    data, final = sink.calls[1][1]
    assert final is not None
    assert final.tokens_used == TRACE_TOKENS
    assert json.loads(data)["usage"]["prompt_total_cost"] == 100
    assert sink.headers()["Transfer-Encoding"] == "chunked"
    # aiohttp sent a capitalised Content-Length for the original body: it must not go through
    assert "Content-Length" in dict(await _backend_headers(mock))
    assert "content-length" not in [name.lower() for name in sink.headers()]


async def test_empty_answer_is_complete_in_the_head(
    server: RequestServer, mock: MockBackend
) -> None:
    mock.config = MockBackendConfig(mode="empty")
    sink = RecordingSink()
    record = await server.serve(query(), chat(), sink)
    assert sink.kinds == ["head"]
    final = sink.calls[0][1][4]
    assert final is not None
    assert final.tokens_used == TokensUsed()
    assert sink.headers()["Content-Length"] == "0"
    assert record.status == "ok"


async def test_backend_http_error_is_forwarded(server: RequestServer, mock: MockBackend) -> None:
    mock.config = MockBackendConfig(mode="error500")
    sink = RecordingSink()
    record = await server.serve(query(), chat(), sink)
    assert sink.calls[0][1][0] == 500
    assert b"mock failure" in sink.body
    assert (record.status, record.http_status, record.error_code) == ("http_error", 500, 500)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (chat(model="Qwen/Qwen3-14B"), "worker: invalid http request: model name mismatch"),
        (chat(foo_bar=1), "worker: invalid http request: unknown option 'foo_bar' in request"),
        (
            HttpRequest("POST", "/v1/embeddings", "HTTP/1.1", (), b"{}"),
            "worker: invalid http request: unsupported method",
        ),
        (
            HttpRequest("POST", "/v1/chat/completions", "HTTP/1.1", (), b"not json"),
            "worker: invalid http request: expected json object",
        ),
        (
            HttpRequest(
                "POST", "/v1/chat/completions", "HTTP/1.1", (("X", "1\r\nX-Injected: 1"),), b"{}"
            ),
            "worker: invalid http request: invalid http header",
        ),
        (
            HttpRequest("GET", "/v1/chat/completions", "HTTP/1.1", (), b"{}"),
            "worker: invalid http request: unsupported http method",
        ),
    ],
)
async def test_bad_requests_get_621_and_never_reach_the_backend(
    server: RequestServer, mock: MockBackend, request_: HttpRequest, message: str
) -> None:
    sink = RecordingSink()
    record = await server.serve(query(), request_, sink)
    assert sink.kinds == ["error"]
    code, got, final = sink.calls[0][1]
    assert (code, got) == (621, message)
    assert final.tokens_used == TokensUsed()
    assert final.worker_start_time is not None
    assert mock.received == []
    assert (record.status, record.error_code) == ("rejected", 621)


@pytest.mark.allow_log_warnings
@pytest.mark.parametrize(
    ("mode", "code", "message", "status"),
    [
        (
            "garbage",
            602,
            "worker: http failed: the backend sent a malformed HTTP response",
            "failed",
        ),
        (
            "drop",
            602,
            "worker: failed to get payload: the backend closed the connection in the middle",
            "failed",
        ),
        (
            "huge",
            602,
            "worker: failed to get payload: the backend's answer is larger than",
            "failed",
        ),
        ("hang", 652, "worker: http failed: the backend did not answer within", "timeout"),
        (
            "hang_body",
            652,
            "worker: failed to get payload: the backend did not answer within",
            "timeout",
        ),
    ],
)
async def test_failing_backends_get_an_error_answer(
    mock: MockBackend, mode: str, code: int, message: str, status: str
) -> None:
    mock.config = MockBackendConfig(mode=mode)
    server = RequestServer(mock.endpoint, model=MODEL, max_answer_bytes=256 * 1024)
    sink = RecordingSink()
    record = await server.serve(query(timeout=0.3), chat(stream=True), sink)
    await server.aclose()
    assert sink.kinds[-1] == "error"
    got_code, got_message, final = sink.calls[-1][1]
    assert got_code == code
    assert got_message.startswith(message)
    assert final.worker_end_time is not None
    assert (record.status, record.error_code) == (status, code)


@pytest.mark.allow_log_warnings
async def test_backend_down_is_an_error_answer() -> None:
    server = RequestServer(BackendEndpoint(base_url="http://127.0.0.1:9"), model=MODEL)
    sink = RecordingSink()
    record = await server.serve(query(), chat(), sink)
    await server.aclose()
    assert sink.calls[0][1][0] == 602
    assert sink.calls[0][1][1].startswith("worker: http failed: cannot connect to the backend")
    assert record.status == "failed"


async def test_request_timer_sends_652_even_if_the_proxy_is_slow(mock: MockBackend) -> None:
    server = RequestServer(mock.endpoint, model=MODEL)
    sink = RecordingSink(gate=asyncio.Event())  # the sink never lets the first part through
    record = await server.serve(query(timeout=0.2), chat(stream=True), sink)
    await server.aclose()
    assert sink.calls[-1][0] == "error"
    assert sink.calls[-1][1][:2] == (652, "worker: timeout")
    assert record.status == "timeout"


async def test_too_many_active_requests_get_602(mock: MockBackend) -> None:
    mock.config = MockBackendConfig(mode="hang_body")
    server = RequestServer(mock.endpoint, model=MODEL, max_active_requests=1)
    first_sink = RecordingSink()
    first = asyncio.create_task(server.serve(query(1, timeout=30.0), chat(), first_sink))
    await first_sink.first_part.wait()
    assert server.status.value.active == 1
    second_sink = RecordingSink()
    record = await server.serve(query(2, proto_version=1), chat(), second_sink)
    assert second_sink.kinds == ["error"]
    code, message, final = second_sink.calls[0][1]
    assert (code, message) == (602, "too many active queries")
    assert final.tokens_used == TokensUsed()
    assert final.flags == 0  # proto 1: no times
    assert record.status == "busy"
    assert server.status.value.busy_refusals == 1
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert server.status.value.active == 0
    await server.aclose()


async def test_final_info_flags_follow_proto_and_debug(
    server: RequestServer, mock: MockBackend
) -> None:
    mock.config = MockBackendConfig(mode="json")
    sink = RecordingSink()
    await server.serve(query(proto_version=1), chat(), sink)
    assert sink.final.flags == 0
    assert sink.final.worker_start_time is None
    sink = RecordingSink()
    await server.serve(query(proto_version=2, enable_debug=True), chat(), sink)
    assert sink.final.flags == 3
    assert sink.final.worker_debug is not None
    debug = json.loads(sink.final.worker_debug)
    assert debug["type"] == "worker_stats"
    assert debug["start_time"] <= debug["answer_receive_start_at"] <= debug["answer_receive_end_at"]


async def test_coefficient_comes_from_the_query(server: RequestServer, mock: MockBackend) -> None:
    mock.config = MockBackendConfig(mode="json")
    sink = RecordingSink()
    record = await server.serve(query(coefficient=1000), chat(), sink)
    assert sink.final.tokens_used == TokensUsed(23, 11, 90, 10, 134)
    assert record.coefficient == 1000


async def test_cancelled_query_is_recorded_and_counters_settle(
    server: RequestServer, mock: MockBackend
) -> None:
    mock.config = MockBackendConfig(mode="hang")
    seen: list[ServingStatus] = []
    started = asyncio.Event()
    server.status.subscribe(seen.append)
    server.status.subscribe(lambda status: started.set())
    task = asyncio.create_task(server.serve(query(timeout=30.0), chat(), RecordingSink()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    final = server.status.value
    assert (final.active, final.failed, final.served) == (0, 1, 0)
    assert seen[0].active == 1


async def test_status_accumulates_tokens(server: RequestServer, mock: MockBackend) -> None:
    for n in range(3):
        await server.serve(query(n), chat(stream=True), RecordingSink())
    status = server.status.value
    assert status.served == 3
    assert status.tokens.total_tokens_used == 600
    assert status.earned_nanotons == 600


async def test_stopping_server_refuses_new_queries(mock: MockBackend) -> None:
    server = RequestServer(mock.endpoint, model=MODEL)
    await server.aclose()
    sink = RecordingSink()
    await server.serve(query(), chat(), sink)
    assert sink.calls[0][1][:2] == (602, "worker is stopping")


async def test_set_endpoint_moves_new_requests(mock: MockBackend) -> None:
    other = MockBackend(MockBackendConfig(mode="json"))
    await other.start()
    server = RequestServer(mock.endpoint, model=MODEL)
    await server.serve(query(), chat(), RecordingSink())
    server.set_endpoint(other.endpoint)
    await server.serve(query(), chat(), RecordingSink())
    await server.aclose()
    await other.aclose()
    assert (len(mock.received), len(other.received)) == (1, 1)


async def _backend_headers(mock: MockBackend) -> Headers:
    """The headers the mock answers a JSON request with (read straight from the mock)."""
    client = BackendClient(mock.endpoint)
    async with client.request("POST", "/v1/chat/completions", (), b"{}", timeout=5) as exchange:
        [item async for item in exchange.body()]
        headers = exchange.head.headers
    await client.aclose()
    return headers


@pytest.mark.allow_log_warnings
async def test_prompts_and_answers_never_reach_the_log(
    mock: MockBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = RequestServer(mock.endpoint, model=MODEL, max_answer_bytes=64 * 1024)
    prompt = "PROMPT-MARKER-77d1"
    for mode in ("ndjson", "sse", "json", "error500", "garbage", "drop", "huge"):
        mock.config = MockBackendConfig(mode=mode, model="ANSWER-MARKER-5b2e", chunks=3)
        await server.serve(
            query(), chat(messages=[{"content": prompt}], stream=True), RecordingSink()
        )
    await server.serve(query(), chat(foo=prompt), RecordingSink())
    await server.aclose()
    assert caplog.records  # something was logged, so the scan means something
    assert prompt not in caplog.text
    assert "ANSWER-MARKER" not in caplog.text
    assert "0" * 16 not in caplog.text  # no answer chunk bytes


def test_repr_of_requests_never_shows_the_prompt() -> None:
    request = chat(messages=[{"role": "user", "content": "PROMPT-MARKER-123"}])
    assert "PROMPT-MARKER-123" not in repr(request)
    assert "PROMPT-MARKER-123" not in repr(query())
