"""Shared pieces for session/worker tests: the trace config, a scripted proxy, a backend."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from app.devnet.mock_backend import MockBackend, MockBackendConfig
from app.network.connection import Keepalive
from app.network.framing import FrameDecoder, FrameEncoder
from app.network.proxy_session import SessionTimers
from app.network.request_server import RequestServer
from app.network.tl import TLObject, decode, encode
from app.network.worker_config import WorkerConfig
from tests.polling import eventually
from tests.unit.network.traces import read_frames

TRACE_MODEL = (
    "Qwen/Qwen3-8B@abc123def456:0000000000000000000000000000000000000000000000000000000000000000"
)
TRACE_OWNER = "UQAuz15H1ZHrZ_psVrAra7HealMIVeFq0wguqlmFno1f3B-m"
QUIET = Keepalive(ping_after=None, drop_after=60.0)
# Payment polling is pushed out of the way unless a test wants it.
NO_POLL = SessionTimers(handshake_timeout=10.0, payment_status_every=(3600, 3600), keepalive=QUIET)


def trace_config(**changes: object) -> WorkerConfig:
    """The worker config the traces were captured with (coefficient 1500, 60 slots, 1 proxy)."""
    values: dict[str, object] = {
        "proxies": ["127.0.0.1:1"],
        "model": TRACE_MODEL,
        "owner_address": TRACE_OWNER,
        "max_active_requests": 60,
        "coefficient": 1500,
        "is_test": True,
        "proxy_connections": 1,
    }
    values.update(changes)
    return WorkerConfig.from_strings(**values)  # type: ignore[arg-type]


def r2w(seqno: int) -> TLObject:
    """Frame ``seqno`` the proxy sent to the worker in the capture, decoded."""
    return decode(read_frames("worker-router.r2w")[seqno].payload, expect="tcp.Packet")


def w2r(seqno: int) -> TLObject:
    return decode(read_frames("worker-router.w2r")[seqno].payload, expect="tcp.Packet")


class ScriptedProxy:
    """A raw proxy on loopback: the test drives it frame by frame (real framing, real TL)."""

    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.connected = asyncio.Event()
        self.finished = asyncio.Event()
        self._decoder = FrameDecoder()
        self._encoder = FrameEncoder()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The latest connection is the one the test drives; each gets fresh sequence numbers.
        self.reader, self.writer = reader, writer
        self._decoder = FrameDecoder()
        self._encoder = FrameEncoder()
        self.connected.set()
        await self.finished.wait()
        writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        self.finished.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def read(self) -> TLObject:
        assert self.reader is not None
        header = await self.reader.readexactly(8)
        (size,) = struct.unpack_from("<I", header)
        (payload,) = self._decoder.feed(header + await self.reader.readexactly(size))
        return decode(payload, expect="tcp.Packet")

    def send(self, obj: TLObject) -> None:
        assert self.writer is not None
        self.writer.write(self._encoder.encode(encode(obj)))

    def send_raw(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    async def accept(self) -> None:
        """Wait for the worker and complete ``tcp.connect``."""
        await self.connected.wait()
        connect = await self.read()
        assert connect.name == "tcp.connect"
        self.send(TLObject("tcp.connected", {"id": connect["id"]}))

    async def answer(self, answer: TLObject) -> TLObject:
        """Read the worker's next ``tcp.query`` and answer it with ``answer``'s data."""
        query = await self.read()
        assert query.name == "tcp.query", query.name
        self.send(TLObject("tcp.queryAnswer", {"id": query["id"], "data": answer["data"]}))
        return decode(query["data"])

    async def replay_handshake(
        self, edit: Callable[[TLObject], TLObject] | None = None
    ) -> list[TLObject]:
        """Answer the three handshake queries with the captured answers; returns the queries."""
        await self.accept()
        first = r2w(1)
        if edit is not None:
            first = first.replace(data=encode(edit(decode(first["data"]))))
        return [await self.answer(first), await self.answer(r2w(2)), await self.answer(r2w(3))]


@asynccontextmanager
async def serving_backend(
    mode: str = "json", *, delay_ms: int = 0, chunks: int = 5, model: str = TRACE_MODEL
) -> AsyncIterator[RequestServer]:
    """N2's real request server in front of N2's mock backend."""
    backend = MockBackend(MockBackendConfig(mode=mode, delay_ms=delay_ms, chunks=chunks))
    await backend.start()
    server = RequestServer(backend.endpoint, model=model, max_active_requests=60)
    await server.start()
    try:
        yield server
    finally:
        await server.aclose()
        await backend.aclose()


async def wait_for(predicate: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """:func:`tests.polling.eventually` that fails naming what it waited for."""
    try:
        await eventually(predicate, limit_s=limit)
    except TimeoutError:
        raise AssertionError(f"gave up waiting for {what}") from None


Awaiter = Callable[[], Awaitable[None]]
