"""SOCKS5 CONNECT through a scripted router on loopback; the router's AttestedPeerInfo record."""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections.abc import Awaitable, Callable

import pytest

from app.devnet.test_proxy import TestProxy
from app.network.peer_info import PeerInfo, PeerInfoError, parse_peer_info, read_peer_info
from app.network.socks5 import Socks5Error, socks5_connect
from app.network.worker import CocoonWorker, WorkerTimers
from tests.unit.network.session_fixtures import serving_backend, trace_config, wait_for
from tests.unit.network.traces import read_records

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _trace_record(stream: str, kind: str) -> bytes:
    return next(r.raw for r in read_records(stream) if r.kind == kind)


class _Router:
    """A scripted SOCKS5 server; records what the client sent."""

    def __init__(self, script: Script) -> None:
        self._script = script
        self.done = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._script(reader, writer)
        finally:
            writer.close()
            self.done.set()

    async def __aenter__(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return "127.0.0.1", int(self._server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        await self.done.wait()
        self._server.close()
        await self._server.wait_closed()


async def test_connect_sends_the_reference_bytes_and_reads_the_peer_record() -> None:
    sent: list[bytes] = []
    greeting = _trace_record("worker-router.w2r", "socks5.greeting")
    request = _trace_record("worker-router.w2r", "socks5.connect")
    record = _trace_record("worker-router.r2w", "attested_peer_info")

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sent.append(await reader.readexactly(3))
        writer.write(_trace_record("worker-router.r2w", "socks5.method_reply"))
        sent.append(await reader.readexactly(10))
        writer.write(_trace_record("worker-router.r2w", "socks5.connect_reply"))
        writer.write(record + b"FIRST-FRAME")
        await writer.drain()
        await reader.read()

    async with _Router(script) as router:
        sock, bound = await socks5_connect(router, ("127.0.0.1", 11001))
        try:
            info = await read_peer_info(sock)
            rest = await asyncio.get_running_loop().sock_recv(sock, 100)
        finally:
            sock.close()
    assert sent == [greeting, request]
    assert bound == ("127.0.0.1", 38910)
    assert rest == b"FIRST-FRAME"  # not one byte of the stream after the record was consumed
    assert info.attestation_kind == "none"
    assert info.image_hash == bytes(32)
    assert info.public_key.hex().startswith("d64c21ef")
    assert (info.source_ip, info.source_port) == ("127.0.0.1", 34660)
    assert (info.destination_ip, info.destination_port) == ("127.0.0.1", 11001)
    assert info.encode() == record


@pytest.mark.parametrize("host", ["proxy.example.com", "::1", "300.1.1.1"])
async def test_only_ipv4_targets(host: str) -> None:
    with pytest.raises(Socks5Error, match="IPv4"):
        await socks5_connect(("127.0.0.1", 1), (host, 11001))


@pytest.mark.parametrize(
    ("method_reply", "connect_reply", "message"),
    [
        (b"\x05\x02", b"", "authentication"),
        (b"\x04\x00", b"", "SOCKS version 4"),
        (b"\x05\x00", b"\x05\x05\x00\x01\x7f\x00\x00\x01\x00\x00", "connection refused"),
        (b"\x05\x00", b"\x05\x00\x00\x09\x7f\x00\x00\x01\x00\x00", "unknown address type"),
        (b"\x05\x00", b"\x05\x00", "connection closed"),
    ],
)
async def test_router_refusals_are_clear_errors(
    method_reply: bytes, connect_reply: bytes, message: str
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(3)
        writer.write(method_reply)
        if connect_reply:
            await reader.readexactly(10)
            writer.write(connect_reply)
        await writer.drain()

    async with _Router(script) as router:
        with pytest.raises(
            Socks5Error if "closed" not in message else ConnectionError, match=message
        ):
            await socks5_connect(router, ("10.0.0.1", 11001))


def _body() -> bytes:
    return _trace_record("worker-router.r2w", "attested_peer_info")[4:]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_body()[:-1], "truncated"),
        (_body() + b"\0\0\0\0", "trailing"),
        (struct.pack("<i", 2) + _body()[4:], "must be 0 or 1"),
        (struct.pack("<ii", 1, 7) + _body()[4:], "unknown attestation variant"),
        (_body()[:52] + b"\xff" + _body()[53:], "too long"),
    ],
)
def test_bad_peer_records(body: bytes, message: str) -> None:
    with pytest.raises(PeerInfoError, match=message):
        parse_peer_info(body)


def test_tdx_record_image_hash_ignores_reportdata() -> None:
    registers = bytes(range(256)) + bytes(range(128))
    info = PeerInfo(
        "tdx", registers + b"R" * 64, bytes(48), b"k" * 32, "10.0.0.2", 1, "10.0.0.1", 2
    )
    parsed = parse_peer_info(info.encode()[4:])
    assert parsed == info
    assert parsed.image_hash == hashlib.sha256(registers + bytes(64)).digest()
    assert "k" * 8 not in repr(parsed)


async def test_oversized_peer_record_is_refused() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(3)
        writer.write(b"\x05\x00")
        await reader.readexactly(10)
        writer.write(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x01" + struct.pack("<I", 1 << 20))
        await writer.drain()
        await reader.read()

    async with _Router(script) as router:
        sock, _ = await socks5_connect(router, ("127.0.0.1", 11001))
        try:
            with pytest.raises(PeerInfoError, match="exceeds"):
                await read_peer_info(sock)
        finally:
            sock.close()


class _RelayRouter:
    """A loopback COCOON router stand-in: SOCKS5, the AttestedPeerInfo record, then a byte pipe."""

    def __init__(self, record: bytes) -> None:
        self.record = record
        self.targets: list[tuple[str, int]] = []
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(3)
        writer.write(b"\x05\x00")
        request = await reader.readexactly(10)
        target = (".".join(str(b) for b in request[4:8]), struct.unpack(">H", request[8:])[0])
        self.targets.append(target)
        up_reader, up_writer = await asyncio.open_connection(*target)
        writer.write(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x97\xfe" + self.record)
        tasks = {
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        }
        self._pipes |= tasks
        await asyncio.gather(*tasks)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        assert self._server is not None
        self._server.close()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()


async def test_worker_reaches_a_proxy_through_the_router() -> None:
    registers = bytes(range(256)) + bytes(range(128))
    attested = PeerInfo(
        "tdx", registers + bytes(64), bytes(48), b"k" * 32, "1.2.3.4", 1, "127.0.0.1", 2
    )
    router = _RelayRouter(attested.encode())
    router_port = await router.start()
    proxy = TestProxy()
    await proxy.start()
    async with serving_backend() as server:
        config = trace_config(
            proxies=[f"127.0.0.1:{proxy.port}"], router_socks5=f"127.0.0.1:{router_port}"
        )
        worker = CocoonWorker(config, server=server, timers=WorkerTimers(tick=(0.01, 0.02)))
        await worker.start()
        try:
            await wait_for(lambda: worker.status.value.connected_proxies == 1, "ready via router")
            state = worker.status.value.proxies[0]
            assert state.peer_image_hash == attested.image_hash.hex()
            assert router.targets == [("127.0.0.1", proxy.port)]
        finally:
            await worker.aclose()
            await proxy.aclose()
            await router.aclose()
