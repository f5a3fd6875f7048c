"""The tcp.* link on real loopback sockets: init, packets, queries, keep-alive and bad input."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from app.network.connection import (
    Connection,
    ConnectionClosedError,
    Keepalive,
    QueryRejectedError,
    RemoteQueryError,
)
from app.network.dialer import open_connection
from app.network.framing import FrameDecoder, FrameEncoder
from app.network.tl import TLObject, decode, encode

FAST = Keepalive(ping_after=None, drop_after=30.0)
RawPeer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _RawServer:
    """A scripted raw peer on loopback; leaving the block waits for the script to end."""

    def __init__(self, peer: RawPeer) -> None:
        self._peer = peer
        self._done: list[asyncio.Event] = []
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        done = asyncio.Event()
        self._done.append(done)
        try:
            await self._peer(reader, writer)
        finally:
            writer.close()
            done.set()

    async def __aenter__(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        for done in self._done:
            await done.wait()
        self._server.close()
        await self._server.wait_closed()


async def _read_frame(reader: asyncio.StreamReader, decoder: FrameDecoder) -> TLObject:
    while True:
        header = await reader.readexactly(8)
        (size,) = struct.unpack_from("<I", header)
        frames = decoder.feed(header + await reader.readexactly(size))
        if frames:
            return decode(frames[0], expect="tcp.Packet")


def _frame(encoder: FrameEncoder, obj: TLObject) -> bytes:
    return encoder.encode(encode(obj))


class _Listener:
    """A real listening Connection (proxy side) with recording handlers."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.got_packet = asyncio.Event()
        self.connections: list[Connection] = []
        self.server: asyncio.Server | None = None

    async def on_query(self, data: bytes) -> bytes:
        obj = decode(data)
        if obj.name == "worker.updatePaymentStatus":
            raise QueryRejectedError(602, "no status here")
        return encode(TLObject("worker.proxyHandshakeCompleted", {}))

    def on_packet(self, data: bytes) -> None:
        self.packets.append(data)
        self.got_packet.set()

    def factory(self) -> Connection:
        conn = Connection(
            dialer=False, on_packet=self.on_packet, on_query=self.on_query, keepalive=FAST
        )
        self.connections.append(conn)
        return conn

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self.factory, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        for conn in self.connections:
            await conn.aclose()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def listener() -> AsyncIterator[tuple[_Listener, int]]:
    lst = _Listener()
    port = await lst.start()
    yield lst, port
    await lst.aclose()


async def test_init_packets_and_queries(listener: tuple[_Listener, int]) -> None:
    lst, port = listener
    received: list[bytes] = []
    got = asyncio.Event()

    def on_packet(data: bytes) -> None:
        received.append(data)
        got.set()

    conn = await open_connection(host="127.0.0.1", port=port, on_packet=on_packet, keepalive=FAST)
    assert conn.is_ready
    ping = encode(TLObject("worker.enabledDisabled", {"disabled": 1}))
    conn.send_packet(ping)
    await lst.got_packet.wait()
    assert lst.packets == [ping]

    answer = await conn.query(
        encode(TLObject("worker.proxyHandshakeComplete", {"is_disabled": False})), 5
    )
    assert decode(answer).name == "worker.proxyHandshakeCompleted"
    with pytest.raises(RemoteQueryError) as err:
        await conn.query(encode(TLObject("worker.updatePaymentStatus", {})), 5)
    assert (err.value.code, err.value.message) == (602, "no status here")

    server_side = lst.connections[0]
    server_side.send_packet(ping)
    await got.wait()
    assert received == [ping]
    await conn.aclose("done")
    assert await server_side.wait_closed() == "peer closed the connection"


async def test_dialer_pings_when_silent_and_drops_a_silent_peer() -> None:
    seen: list[str] = []
    done = asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder, encoder = FrameDecoder(), FrameEncoder()
        connect = await _read_frame(reader, decoder)
        writer.write(_frame(encoder, TLObject("tcp.connected", {"id": connect["id"]})))
        ping = await _read_frame(reader, decoder)
        seen.append(ping.name)
        writer.write(_frame(encoder, TLObject("tcp.pong", {"id": ping["id"]})))
        seen.append((await _read_frame(reader, decoder)).name)  # the next ping; never answered
        await reader.read()  # until the worker gives up
        seen.append("eof")
        done.set()

    async with _RawServer(peer) as port:
        conn = await open_connection(
            host="127.0.0.1",
            port=port,
            on_packet=lambda _: None,
            keepalive=Keepalive(ping_after=0.02, drop_after=0.2),
        )
        reason = await conn.wait_closed()
        await done.wait()
    assert seen == ["tcp.ping", "tcp.ping", "eof"]
    assert reason == "no data from the peer for 0.2 s"


async def test_listener_answers_pings_and_stray_init_frames_are_ignored(
    listener: tuple[_Listener, int],
) -> None:
    _, port = listener
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    decoder, encoder = FrameDecoder(), FrameEncoder()
    writer.write(_frame(encoder, TLObject("tcp.connect", {"id": -5})))
    assert (await _read_frame(reader, decoder))["id"] == -5
    writer.write(_frame(encoder, TLObject("tcp.connect", {"id": 9})))
    writer.write(_frame(encoder, TLObject("tcp.ping", {"id": 77})))
    pong = await _read_frame(reader, decoder)
    assert (pong.name, pong["id"]) == ("tcp.pong", 77)
    writer.close()
    await writer.wait_closed()


def _tl_frame(seqno: int, payload: bytes) -> bytes:
    return struct.pack("<Ii", len(payload), seqno) + payload


_CONNECTED_PAYLOAD = b""  # filled per test: the echo of the worker's connect id

_BAD_INPUT = {
    "length below 4": (struct.pack("<Ii", 3, 1) + b"abc", "malformed frame: frame length 3"),
    "length above 16 MiB": (struct.pack("<Ii", (1 << 24) + 1, 1), "malformed frame: frame length"),
    "wrong seqno": (_tl_frame(5, encode(TLObject("tcp.ping", {"id": 1}))), "seqno 5, expected 1"),
    "unknown constructor": (_tl_frame(1, b"\xde\xad\xbe\xef" + bytes(8)), "malformed packet"),
    "trailing bytes": (
        _tl_frame(1, encode(TLObject("tcp.ping", {"id": 1})) + bytes(4)),
        "malformed packet",
    ),
    "truncated body": (
        _tl_frame(1, encode(TLObject("tcp.ping", {"id": 1}))[:8]),
        "malformed packet",
    ),
    "truncated frame then EOF": (
        struct.pack("<Ii", 12, 1) + b"abc",
        "peer closed the connection in the middle of a frame",
    ),
    "not a tcp.Packet": (
        _tl_frame(1, encode(TLObject("worker.updatePaymentStatus", {}))),
        "malformed packet",
    ),
}


@pytest.mark.parametrize("case", sorted(_BAD_INPUT))
async def test_bad_input_from_the_proxy_closes_with_a_reason(case: str) -> None:
    raw, expected = _BAD_INPUT[case]

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder, encoder = FrameDecoder(), FrameEncoder()
        connect = await _read_frame(reader, decoder)
        writer.write(_frame(encoder, TLObject("tcp.connected", {"id": connect["id"]})))
        await writer.drain()
        writer.write(raw)
        await writer.drain()
        writer.write_eof()
        await reader.read()
        writer.close()

    async with _RawServer(peer) as port:
        conn = await open_connection(
            host="127.0.0.1", port=port, on_packet=lambda _: None, keepalive=FAST
        )
        reason = await conn.wait_closed()
    assert expected in reason


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        (
            TLObject("tcp.ping", {"id": 1}),
            "expected tcp.connected as the first frame, got tcp.ping",
        ),
        (TLObject("tcp.connected", {"id": 1}), "tcp.connected echoed a different id"),
    ],
)
async def test_dialer_rejects_a_bad_init(first: TLObject, expected: str) -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_frame(FrameEncoder(), first))
        await reader.read()
        writer.close()

    async with _RawServer(peer) as port:
        with pytest.raises(ConnectionClosedError, match=expected):
            await open_connection(
                host="127.0.0.1", port=port, on_packet=lambda _: None, keepalive=FAST
            )


async def test_listener_rejects_a_first_frame_that_is_not_connect(
    listener: tuple[_Listener, int],
) -> None:
    lst, port = listener
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_frame(FrameEncoder(), TLObject("tcp.packet", {"data": b"abcd"})))
    assert await reader.read() == b""
    assert lst.connections[0].close_reason == (
        "expected tcp.connect as the first frame, got tcp.packet"
    )
    assert lst.packets == []
    writer.close()


async def test_closing_fails_pending_queries_and_late_sends(
    listener: tuple[_Listener, int],
) -> None:
    _, port = listener
    conn = await open_connection(
        host="127.0.0.1", port=port, on_packet=lambda _: None, keepalive=FAST
    )
    never = asyncio.get_running_loop().create_future()

    async def slow_query() -> bytes:
        await never
        return b""

    conn._on_query = None  # the dialler answers queries with an error; not under test here
    pending = asyncio.create_task(
        conn.query(encode(TLObject("worker.updatePaymentStatus", {})), 30)
    )
    await asyncio.sleep(0)
    conn.close("test over")
    with pytest.raises(ConnectionClosedError, match="test over"):
        await pending
    with pytest.raises(ConnectionClosedError):
        conn.send_packet(b"abcd")
    with pytest.raises(ConnectionClosedError):
        await conn.drain()
    assert await conn.wait_closed() == "test over"


async def test_query_timeout_leaves_the_link_usable() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder, encoder = FrameDecoder(), FrameEncoder()
        connect = await _read_frame(reader, decoder)
        writer.write(_frame(encoder, TLObject("tcp.connected", {"id": connect["id"]})))
        first = await _read_frame(reader, decoder)  # ignored: times out
        second = await _read_frame(reader, decoder)
        writer.write(
            _frame(encoder, TLObject("tcp.queryAnswer", {"id": first["id"], "data": b"late"}))
        )
        writer.write(
            _frame(encoder, TLObject("tcp.queryAnswer", {"id": second["id"], "data": b"ok!!"}))
        )
        await reader.read()
        writer.close()

    async with _RawServer(peer) as port:
        conn = await open_connection(
            host="127.0.0.1", port=port, on_packet=lambda _: None, keepalive=FAST
        )
        with pytest.raises(TimeoutError):
            await conn.query(b"\x24\xa5\x70\xdc", 0.01)
        assert await conn.query(b"\x24\xa5\x70\xdc", 5) == b"ok!!"
        await conn.aclose()


@pytest.mark.allow_log_warnings
async def test_a_failing_packet_handler_closes_only_that_link(
    listener: tuple[_Listener, int],
) -> None:
    lst, port = listener

    def broken(data: bytes) -> None:
        raise RuntimeError("bug")

    conn = await open_connection(host="127.0.0.1", port=port, on_packet=broken, keepalive=FAST)
    lst.connections[0].send_packet(b"abcd")
    assert await conn.wait_closed() == "internal error while handling a frame"


async def test_drain_waits_while_the_peer_does_not_read() -> None:
    release = asyncio.Event()
    received = 0

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal received
        decoder, encoder = FrameDecoder(), FrameEncoder()
        connect = await _read_frame(reader, decoder)
        writer.write(_frame(encoder, TLObject("tcp.connected", {"id": connect["id"]})))
        await release.wait()
        while chunk := await reader.read(1 << 20):
            received += len(chunk)

    async with _RawServer(peer) as port:
        conn = await open_connection(
            host="127.0.0.1", port=port, on_packet=lambda _: None, keepalive=FAST
        )
        blob = bytes(1 << 20)
        drained = asyncio.Event()

        async def writer() -> None:
            for _ in range(64):  # far more than the socket buffers hold
                conn.send_packet(blob)
                await conn.drain()
            drained.set()

        task = asyncio.create_task(writer())
        try:
            while not conn._write_paused:  # noqa: ASYNC110 - transport state, no event to await
                await asyncio.sleep(0.001)
            assert not drained.is_set()
        finally:
            release.set()  # never leave the peer (and this test) hanging
        await task
        await conn.aclose()
    assert received > 60 * (1 << 20)
