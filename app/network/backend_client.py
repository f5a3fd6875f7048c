"""A lean streaming HTTP/1.1 client to the local OpenAI-compatible backend (TCP or Unix socket).

asyncio streams, not aiohttp: measured (``benchmarks/request_serving.py``) the whole serving path
costs the same CPU as an aiohttp forwarder doing less work (about 0.42 CPU-ms for 50 streamed
chunks), while this client knows which read carries the last byte (so the final part carries it,
as the reference sends it), keeps one deadline timer per request and needs no session lifecycle.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

from app.engine.endpoint import BackendEndpoint
from app.network.answer import Headers

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
_MAX_HEAD_BYTES = 64 * 1024
_READ_SIZE = 256 * 1024
_IDLE_TIMEOUT = 30.0
_NO_BODY_STATUSES = frozenset({204, 304})
_MAX_CHUNK_LINE = 4096
# A chunk-size line: hex digits, optional extensions, CRLF (no signs, no "0x", no underscores).
_CHUNK_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r\n")
# Hop-by-hop headers are the client's business with us, never forwarded to the backend.
_DROPPED_REQUEST_HEADERS = frozenset(
    (
        *("host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"),
        *("te", "trailer", "expect", "proxy-authorization", "proxy-connection", "authorization"),
        "accept-encoding",
    )
)


class BackendError(Exception):
    """The backend could not be reached or answered something that is not HTTP/1.1.

    Messages are written for logs and the proxy; they never contain request or answer bytes.
    """


class BackendTimeout(BackendError):  # noqa: N818 - the name the serving contract uses
    """The backend did not connect or answer in time."""


class _StaleConnectionError(BackendError):
    """A pooled connection the backend had closed before it read our request."""


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """Status line and headers of the backend's answer, headers in wire order."""

    http_version: str
    status: int
    reason: str
    headers: Headers

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


class _Connection:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self) -> bool:
        return (
            not self.writer.is_closing()
            and not self.reader.at_eof()
            and time.monotonic() - self.idle_since < _IDLE_TIMEOUT
        )

    def close(self) -> None:
        self.writer.transport.abort()


class BackendClient:
    """Sends requests to one :class:`BackendEndpoint`, reusing idle connections (keep-alive)."""

    def __init__(
        self,
        endpoint: BackendEndpoint,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_idle_connections: int = 16,
    ) -> None:
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.max_body_bytes = max_body_bytes
        self._max_idle = max_idle_connections
        self._idle: list[_Connection] = []
        parts = urlsplit(endpoint.base_url)
        self._host = parts.hostname or "localhost"
        self._port = parts.port or 80
        self._host_header = parts.netloc or self._host
        self._closed = False

    def request(
        self, method: str, path: str, headers: Headers, body: bytes, *, timeout: float
    ) -> BackendExchange:
        """One request; use as ``async with client.request(...) as exchange``.

        ``timeout`` bounds everything from connecting to the last body byte. The client's
        hop-by-hop headers, ``Host`` and ``Authorization`` are replaced by this client's own.
        """
        head = [f"{method} {path} HTTP/1.1\r\nHost: {self._host_header}\r\n"]
        for name, value in headers:
            if name.lower() not in _DROPPED_REQUEST_HEADERS:
                head.append(f"{name}: {value}\r\n")
        if self.endpoint.api_key:
            head.append(f"Authorization: Bearer {self.endpoint.api_key}\r\n")
        head.append(f"Accept-Encoding: identity\r\nContent-Length: {len(body)}\r\n\r\n")
        return BackendExchange(self, "".join(head).encode("latin-1") + body, method, timeout)

    def close(self) -> None:
        """Close the idle connections; connections in use close when their exchange ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    async def aclose(self) -> None:
        self.close()

    async def _connect(self, deadline: float) -> tuple[_Connection, bool]:
        """An idle connection (reused=True) or a new one."""
        while self._idle:
            connection = self._idle.pop()
            if connection.usable():
                return connection, True
            connection.close()
        loop = asyncio.get_running_loop()
        limit = min(self.connect_timeout, deadline - loop.time())
        where = self.endpoint.unix_socket or f"{self._host}:{self._port}"
        try:
            async with asyncio.timeout(max(limit, 0.0)):
                if self.endpoint.unix_socket is not None:
                    reader, writer = await asyncio.open_unix_connection(
                        self.endpoint.unix_socket, limit=_MAX_HEAD_BYTES
                    )
                else:
                    reader, writer = await asyncio.open_connection(
                        self._host, self._port, limit=_MAX_HEAD_BYTES
                    )
        except TimeoutError:
            raise BackendTimeout(f"connecting to the backend at {where} timed out") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise BackendError(f"cannot connect to the backend at {where}: {reason}") from None
        return _Connection(reader, writer), False

    def _release(self, connection: _Connection) -> None:
        if self._closed or len(self._idle) >= self._max_idle:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)


class BackendExchange:
    """One request/response: ``head`` after entering; then iterate :meth:`body`."""

    def __init__(self, client: BackendClient, data: bytes, method: str, timeout: float) -> None:
        self._client = client
        self._data = data
        self._method = method
        self._timeout = timeout
        self._connection: _Connection | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timed_out = False
        self._reusable = False
        self._head: ResponseHead | None = None

    @property
    def head(self) -> ResponseHead:
        if self._head is None:
            raise RuntimeError("the exchange has not started")
        return self._head

    @property
    def has_body(self) -> bool:
        """False when the head alone shows the body is empty (HEAD, 1xx/204/304, length 0)."""
        head = self.head
        if self._method == "HEAD" or head.status in _NO_BODY_STATUSES or head.status < 200:
            return False
        if "chunked" in (head.header("transfer-encoding") or "").lower():
            return True
        length = head.header("content-length")
        return length is None or length.strip() != "0"

    async def __aenter__(self) -> BackendExchange:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        try:
            connection, reused = await self._client._connect(deadline)
            self._arm(connection, deadline)
            try:
                self._head = await self._send(connection)
            except _StaleConnectionError:
                if not reused or self._timed_out:
                    raise
                # A pooled connection the backend had already closed: one fresh try.
                self._disarm(close=True)
                connection, _ = await self._client._connect(deadline)
                self._arm(connection, deadline)
                self._head = await self._send(connection)
        except BaseException:
            self._disarm(close=True)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection = self._connection
        self._disarm(close=not self._reusable)
        if self._reusable and connection is not None:
            self._client._release(connection)

    def _arm(self, connection: _Connection, deadline: float) -> None:
        self._connection = connection
        self._timer = asyncio.get_running_loop().call_at(deadline, self._expire)

    def _disarm(self, *, close: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if close and self._connection is not None:
            self._connection.close()
        self._connection = None

    def _expire(self) -> None:
        # Aborting the transport wakes any pending read with EOF; _fail then reports a timeout.
        self._timed_out = True
        if self._connection is not None:
            self._connection.close()

    def _too_large(self) -> str:
        return f"the backend's answer is larger than {self._client.max_body_bytes} bytes"

    def _fail(self, message: str) -> BackendError:
        if self._timed_out:
            return BackendTimeout(f"the backend did not answer within {self._timeout:.1f} s")
        return BackendError(message)

    async def _send(self, connection: _Connection) -> ResponseHead:
        connection.writer.write(self._data)
        try:
            await connection.writer.drain()
            raw = await connection.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial and not self._timed_out:
                raise _StaleConnectionError(
                    "the backend closed the connection before answering"
                ) from None
            raise self._fail(
                "the backend closed the connection in the middle of its headers"
            ) from None
        except asyncio.LimitOverrunError:
            raise self._fail("the backend sent headers larger than 64 KiB") from None
        except ConnectionResetError:
            if self._timed_out:
                raise self._fail("") from None
            raise _StaleConnectionError(
                "the backend reset the connection before answering"
            ) from None
        except OSError as exc:
            raise self._fail(f"the backend connection failed: {type(exc).__name__}") from None
        return _parse_head(raw)

    def body(self) -> AsyncIterator[tuple[bytes, bool]]:
        """Yield ``(data, is_last)`` as bytes arrive; the last item has ``is_last`` set.

        Raises :class:`BackendError` (or :class:`BackendTimeout`) if the body breaks off, is
        malformed or exceeds the client's ``max_body_bytes``. The connection goes back to the
        pool once the last item was handed out (the caller may stop iterating there).
        """
        head = self.head
        connection = self._connection
        if connection is None:
            raise RuntimeError("the exchange is closed")
        keep_alive = head.http_version == "HTTP/1.1" and (
            (head.header("connection") or "").lower() != "close"
        )
        if not self.has_body:
            self._reusable = keep_alive
            return _single(b"")
        if "chunked" in (head.header("transfer-encoding") or "").lower():
            return self._chunked(connection.reader, keep_alive)
        length = head.header("content-length")
        if length is not None:
            return self._sized(connection.reader, length, keep_alive)
        return self._until_eof(connection.reader)

    async def _read(self, reader: asyncio.StreamReader) -> bytes:
        try:
            data = await reader.read(_READ_SIZE)
        except OSError as exc:
            raise self._fail(f"the backend connection failed: {type(exc).__name__}") from None
        if not data:
            raise self._fail("the backend closed the connection in the middle of its answer")
        return data

    async def _sized(
        self, reader: asyncio.StreamReader, length: str, keep_alive: bool
    ) -> AsyncIterator[tuple[bytes, bool]]:
        if not length.strip().isdigit():
            raise self._fail("the backend sent an invalid Content-Length")
        remaining = int(length)
        if remaining > self._client.max_body_bytes:
            raise self._fail(self._too_large())
        while remaining > 0:
            data = await self._read(reader)
            if len(data) > remaining:
                raise self._fail("the backend sent more bytes than its Content-Length")
            remaining -= len(data)
            if remaining == 0:
                self._reusable = keep_alive
            yield data, remaining == 0

    async def _chunked(
        self, reader: asyncio.StreamReader, keep_alive: bool
    ) -> AsyncIterator[tuple[bytes, bool]]:
        limit = self._client.max_body_bytes
        received = 0
        buf = b""
        parts: list[bytes] = []
        while True:
            data = await self._read(reader)
            buf = buf + data if buf else data
            try:
                used, done = _decode_chunks(buf, parts, limit)
            except ValueError:
                raise self._fail("the backend sent a malformed chunked body") from None
            except OverflowError:
                raise self._fail(self._too_large()) from None
            buf = buf[used:]
            if len(buf) > limit + _MAX_CHUNK_LINE:
                raise self._fail(self._too_large())
            if not parts and not done:
                continue
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            parts.clear()
            received += len(data)
            if received > limit:
                raise self._fail(self._too_large())
            if done:
                self._reusable = keep_alive
                yield data, True
                return
            yield data, False

    async def _until_eof(self, reader: asyncio.StreamReader) -> AsyncIterator[tuple[bytes, bool]]:
        received = 0
        while True:
            try:
                data = await reader.read(_READ_SIZE)
            except OSError as exc:
                raise self._fail(f"the backend connection failed: {type(exc).__name__}") from None
            if not data:
                if self._timed_out:
                    raise self._fail("")
                yield b"", True
                return
            received += len(data)
            if received > self._client.max_body_bytes:
                raise self._fail(self._too_large())
            yield data, False


def _decode_chunks(buf: bytes, parts: list[bytes], limit: int) -> tuple[int, bool]:
    """Move the complete chunks of ``buf`` into ``parts``: (bytes consumed, last chunk seen).

    Raises ``ValueError`` for bytes that cannot be chunked encoding and ``OverflowError`` for a
    chunk announced larger than ``limit``.
    """
    pos = 0
    size_line = _CHUNK_SIZE_LINE.match
    while True:
        match = size_line(buf, pos)
        if match is None:
            pending = buf[pos : pos + _MAX_CHUNK_LINE]
            if b"\n" in pending or len(pending) >= _MAX_CHUNK_LINE:
                raise ValueError("malformed chunk size line")
            return pos, False
        size = int(match.group(1), 16)
        if size > limit:
            raise OverflowError(size)
        start = match.end()
        if size == 0:
            if buf.find(b"\r\n\r\n", start - 2) >= 0:  # the end of the (empty) trailers
                return len(buf), True
            return pos, False
        end = start + size
        if len(buf) < end + 2:
            return pos, False
        if buf[end : end + 2] != b"\r\n":
            raise ValueError("chunk data not followed by CRLF")
        parts.append(buf[start:end])
        pos = end + 2


async def _single(data: bytes) -> AsyncIterator[tuple[bytes, bool]]:
    yield data, True


def _parse_head(raw: bytes) -> ResponseHead:
    try:
        text = raw.decode("latin-1")
        status_line, *lines = text[:-4].split("\r\n")
        version, status_text, *rest = status_line.split(" ", 2)
        status = int(status_text)
    except ValueError:
        raise BackendError("the backend sent a malformed HTTP response") from None
    if version not in {"HTTP/1.0", "HTTP/1.1"} or not 100 <= status <= 999:
        raise BackendError("the backend sent a malformed HTTP response")
    headers: list[tuple[str, str]] = []
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BackendError("the backend sent a malformed HTTP header")
        headers.append((name, value.strip()))
    return ResponseHead(version, status, rest[0] if rest else "", tuple(headers))
