"""The streaming backend client on loopback sockets: framings, keep-alive, timeouts, bad input."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.devnet.mock_backend import MockBackend, MockBackendConfig
from app.engine.endpoint import BackendEndpoint
from app.network.backend_client import (
    BackendClient,
    BackendError,
    BackendExchange,
    BackendTimeout,
)

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
JSON = (("Content-Type", "application/json"),)


class RawBackend:
    """A scripted HTTP peer: each accepted connection runs ``script``; counts connections."""

    def __init__(self, script: Script) -> None:
        self._script = script
        self.connections = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> RawBackend:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @property
    def endpoint(self) -> BackendEndpoint:
        return BackendEndpoint(base_url=f"http://127.0.0.1:{self.port}")


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


async def fetch(
    client: BackendClient, path: str = "/v1/chat/completions", limit: float = 5.0
) -> tuple[int, list[tuple[bytes, bool]]]:
    async with client.request("POST", path, JSON, b"{}", timeout=limit) as exchange:
        items = [item async for item in exchange.body()]
        return exchange.head.status, items


async def test_streamed_ndjson_arrives_whole_and_ends_with_last(mock: MockBackend) -> None:
    client = BackendClient(mock.endpoint)
    status, items = await fetch(client)
    await client.aclose()
    assert status == 200
    body = b"".join(data for data, _ in items)
    assert body.count(b"\n") == 6
    assert b'"usage"' in body
    assert [last for _, last in items].count(True) == 1
    assert items[-1][1] is True


async def test_chunks_are_yielded_before_the_body_ends() -> None:
    got_first = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await got_first.wait()  # the second chunk only after the client saw the first
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()

    async with RawBackend(script) as backend:
        client = BackendClient(backend.endpoint)
        async with client.request("POST", "/", JSON, b"{}", timeout=5) as exchange:
            seen = []
            async for data, last in exchange.body():
                seen.append((data, last))
                got_first.set()
        await client.aclose()
    assert seen == [(b"first", False), (b"second", True)]


async def test_json_with_content_length_is_one_last_item(mock: MockBackend) -> None:
    mock.config = MockBackendConfig(mode="json")
    client = BackendClient(mock.endpoint)
    status, items = await fetch(client)
    await client.aclose()
    assert status == 200
    assert len(items) == 1
    assert items[0][1] is True
    assert b'"usage"' in items[0][0]


async def test_keep_alive_reuses_one_connection() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(3):
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async with RawBackend(script) as backend:
        client = BackendClient(backend.endpoint)
        for _ in range(3):
            status, items = await fetch(client)
            assert (status, items) == (200, [(b"ok", True)])
        await client.aclose()
    assert backend.connections == 1


async def test_connection_is_reused_when_the_caller_stops_at_the_last_chunk() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):
            await read_request(reader)
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
            )
            await writer.drain()

    async with RawBackend(script) as backend:
        client = BackendClient(backend.endpoint)
        for _ in range(2):
            async with client.request("POST", "/", JSON, b"{}", timeout=5) as exchange:
                async for _data, last in exchange.body():
                    if last:
                        break
        await client.aclose()
    assert backend.connections == 1


async def test_a_pooled_connection_the_backend_closed_is_replaced() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()  # then hang up although the answer allowed keep-alive

    async with RawBackend(script) as backend:
        client = BackendClient(backend.endpoint)
        assert (await fetch(client))[0] == 200
        await asyncio.sleep(0)  # let the close arrive
        assert (await fetch(client))[0] == 200
        await client.aclose()
    assert backend.connections == 2


async def test_unix_socket_and_headers(tmp_path: Path) -> None:
    backend = MockBackend(MockBackendConfig(mode="json"), unix_socket=tmp_path / "engine.sock")
    await backend.start()
    endpoint = BackendEndpoint(
        base_url="http://engine", unix_socket=tmp_path / "engine.sock", api_key="sk-local-1234"
    )
    client = BackendClient(endpoint)
    headers = (
        ("Host", "client.example:10000"),
        ("Authorization", "Bearer client-secret"),
        ("Content-Type", "application/json"),
        ("Connection", "keep-alive"),
        ("Accept-Encoding", "gzip"),
    )
    async with client.request(
        "POST", "/v1/chat/completions", headers, b"{}", timeout=5
    ) as exchange:
        [item async for item in exchange.body()]
    await client.aclose()
    await backend.aclose()
    received = dict(backend.received[0].headers)
    assert received["Host"] == "engine"
    assert received["Authorization"] == "Bearer sk-local-1234"
    assert received["Accept-Encoding"] == "identity"
    assert received["Content-Length"] == "2"
    assert "client-secret" not in repr(backend.received[0].headers)


async def test_refused_connection_is_a_backend_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = BackendClient(BackendEndpoint(base_url=f"http://127.0.0.1:{port}"))
    with pytest.raises(BackendError, match=r"cannot connect to the backend at 127\.0\.0\.1"):
        await fetch(client)
    await client.aclose()


async def test_missing_unix_socket_is_a_backend_error(tmp_path: Path) -> None:
    client = BackendClient(BackendEndpoint(base_url="http://engine", unix_socket=tmp_path / "none"))
    with pytest.raises(BackendError, match="cannot connect"):
        await fetch(client)


@pytest.mark.parametrize("mode", ["hang", "hang_body"])
async def test_hanging_backend_times_out(mock: MockBackend, mode: str) -> None:
    mock.config = MockBackendConfig(mode=mode)
    client = BackendClient(mock.endpoint)
    with pytest.raises(BackendTimeout, match=r"did not answer within 0\.2 s"):
        await fetch(client, limit=0.2)
    await client.aclose()


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("garbage", "malformed HTTP response"),
        ("drop", "closed the connection in the middle of its answer"),
        ("huge", "larger than 262144 bytes"),
    ],
)
async def test_broken_backends_are_backend_errors(
    mock: MockBackend, mode: str, message: str
) -> None:
    mock.config = MockBackendConfig(mode=mode)
    client = BackendClient(mock.endpoint, max_body_bytes=256 * 1024)
    with pytest.raises(BackendError, match=message):
        await fetch(client)
    await client.aclose()


def _answer_script(answer: bytes) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for i in range(len(answer)):  # one byte at a time: every split point is exercised
            writer.write(answer[i : i + 1])
            await writer.drain()

    return script


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\n\r\n",
            b"abc",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"A\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n",
            b"0123456789",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd", b"abcd"),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil eof", b"until eof"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    ],
)
async def test_body_framings_byte_by_byte(answer: bytes, body: bytes) -> None:
    async with RawBackend(_answer_script(answer)) as backend:
        client = BackendClient(backend.endpoint)
        _, items = await fetch(client)
        await client.aclose()
    assert b"".join(data for data, _ in items) == body
    assert items[-1][1] is True


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
            "malformed chunked",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
            "malformed chunked",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n",
            "malformed chunked",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFF\r\n", "larger than"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "in the middle of its answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", "malformed HTTP header"),
        (b"HTTP/2 200 OK\r\n\r\n", "malformed HTTP response"),
        (b"HTTP/1.1 abc OK\r\n\r\n", "malformed HTTP response"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", "headers larger than 64 KiB"),
        (b"HTTP/1.1 200 OK\r\nContent-", "in the middle of its headers"),
    ],
)
async def test_malformed_answers_are_backend_errors(answer: bytes, message: str) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()

    async with RawBackend(script) as backend:
        client = BackendClient(backend.endpoint, max_body_bytes=1 << 20)
        with pytest.raises(BackendError, match=message):
            await fetch(client)
        await client.aclose()


async def test_error_messages_never_contain_answer_bytes() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SECRET-ANSWER-MARKER garbage\r\n\r\n")
        await writer.drain()

    async with RawBackend(script) as backend:
        client = BackendClient(backend.endpoint)
        with pytest.raises(BackendError) as caught:
            await fetch(client)
        await client.aclose()
    assert "SECRET-ANSWER-MARKER" not in str(caught.value)


def test_endpoint_repr_hides_the_api_key() -> None:
    client = BackendClient(BackendEndpoint(base_url="http://127.0.0.1:1", api_key="sk-very-secret"))
    assert "sk-very-secret" not in repr(client.endpoint)


@settings(max_examples=80, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=300), max_size=8),
    extensions=st.booleans(),
    cuts=st.lists(st.integers(0, 4000), max_size=10),
)
async def test_chunked_decoding_survives_any_split(
    chunks: list[bytes], extensions: bool, cuts: list[int]
) -> None:
    ext = b";name=value" if extensions else b""
    wire = b"".join(b"%x%s\r\n%s\r\n" % (len(c), ext, c) for c in chunks) + b"0\r\n\r\n"
    points = sorted({min(c, len(wire)) for c in cuts} | {len(wire)})
    pieces = [wire[a:b] for a, b in zip([0, *points[:-1]], points, strict=True) if b > a]
    reader = asyncio.StreamReader()

    async def feed() -> None:
        for piece in pieces:  # one piece per read: the decoder sees every split
            reader.feed_data(piece)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        reader.feed_eof()

    client = BackendClient(BackendEndpoint(base_url="http://x:1"))
    exchange = BackendExchange(client, b"", "POST", 5)
    feeder = asyncio.create_task(feed())
    items = [item async for item in exchange._chunked(reader, keep_alive=True)]
    await feeder
    assert b"".join(data for data, _ in items) == b"".join(chunks)
    assert [last for _, last in items] == [False] * (len(items) - 1) + [True]
