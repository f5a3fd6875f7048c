"""A test-side COCOON router fronting a plain TCP target, like ``router -R PORT:HOST:PORT@policy``.

It owns the server half of the router leg (docs/protocol.md §2.4) for integration tests: the
proof-of-work challenge and its check (``pow_server``'s reading of ``tee/cocoon/pow.cpp``), mutual
TLS 1.3 that accepts any self-signed client certificate and then applies the app's verifier, and
the byte tunnel to the target. Each accepted connection leaves a :class:`RouterConnection` record.

Python's ``ssl`` has no verify callback, so the reference's "accept, then verify ourselves" is
done by trusting the client certificate on sight: the TLS message callback sees the decrypted
Certificate message before OpenSSL verifies it and adds that certificate to the connection's own
context (one per connection). :func:`~app.network.ratls.verify_peer` then judges it as the
reference's verifier would; a certificate it refuses ends the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from app.network.peer_info import recv_exactly
from app.network.ratls import (
    PeerAttestation,
    RaTlsError,
    load_cert_chain,
    make_identity,
    restrict_to_ratls,
    verify_peer,
)
from tests.unit.network.pow_server import (
    REFERENCE_ANSWER_MAGIC,
    REFERENCE_CHALLENGE_MAGIC,
    reference_verify,
)
from tests.unit.network.ratls_server import ServerCert, from_identity

_ANSWER_SIZE = 12
_CHUNK = 65536
# OpenSSL's X509_V_FLAG_IGNORE_CRITICAL (unnamed in ssl.VerifyFlags): the TDX extensions are
# critical, and the reference verifier lets them through to judge them itself.
_IGNORE_CRITICAL = ssl.VerifyFlags(0x10)
_HANDSHAKE = 22  # TLS record content type
_CERTIFICATE = 11  # handshake message type


@dataclass
class RouterConnection:
    """What happened on one accepted connection, step by step (for assertions).

    ``pow_ok`` is None while no answer has come (or none ever did); ``error`` says why the
    connection ended before or instead of the tunnel ("" for a tunnel that ran to its end).
    """

    pow_ok: bool | None = None
    nonce: int | None = None
    tls_ok: bool = False
    cipher: str = ""
    client_attestation: PeerAttestation | None = None
    tunnelled: bool = False
    bytes_to_target: int = 0
    bytes_to_client: int = 0
    error: str = ""
    finished: bool = False


@dataclass(frozen=True)
class RouterConfig:
    """The router's challenge and identity; ``cert`` None makes a good one under ``policy``."""

    policy: str = "any"
    difficulty: int = 12
    magic: int = REFERENCE_CHALLENGE_MAGIC
    cert: ServerCert | None = None
    timeout: float = 10.0
    salt: bytes = field(default_factory=lambda: os.urandom(16))


class TestRouter:
    """Listens on 127.0.0.1 and tunnels each attested client to ``target``.

    Use ``async with`` or :meth:`start` / :meth:`aclose`; :attr:`port` is known once started.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self,
        target: tuple[str, int],
        config: RouterConfig | None = None,
        *,
        port: int = 0,
    ) -> None:
        self.config = config or RouterConfig()
        self._target = target
        self._bind_port = port
        self._cert = self.config.cert or from_identity(make_identity(self.config.policy))
        self._listener: socket.socket | None = None
        self._acceptor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections: list[RouterConnection] = []

    @property
    def port(self) -> int:
        """The listening port."""
        if self._listener is None:
            raise RuntimeError("the router is not started")
        return int(self._listener.getsockname()[1])

    async def __aenter__(self) -> TestRouter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Listen on the configured loopback port (0: a free one)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self._bind_port))
            listener.listen()
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self._acceptor = asyncio.create_task(self._accept(listener), name="test-router accept")

    async def aclose(self) -> None:
        """Stop listening and end every connection and tunnel; returns once all are closed."""
        if self._acceptor is not None:
            self._acceptor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._acceptor
            self._acceptor = None
        if self._listener is not None:
            self._listener.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sock, _ = await loop.sock_accept(listener)
            record = RouterConnection()
            self.connections.append(record)
            task = asyncio.create_task(self._serve(sock, record), name="test-router connection")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, sock: socket.socket, record: RouterConnection) -> None:
        writers: list[asyncio.StreamWriter] = []
        try:
            async with asyncio.timeout(self.config.timeout):
                if not await self._proof_of_work(sock, record):
                    return
                tls = await self._tls(sock, record)
                writers.append(tls[1])
                if not self._attest(tls[1], record):
                    return
                target = await asyncio.open_connection(*self._target)
                writers.append(target[1])
            record.tunnelled = True
            await self._tunnel(tls, target, record)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            record.error = record.error or f"{type(exc).__name__}: {exc}"
        finally:
            for writer in writers:
                writer.transport.abort()
            for writer in writers:
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            sock.close()  # the transport owns it once TLS started; closing twice is harmless
            record.finished = True

    async def _proof_of_work(self, sock: socket.socket, record: RouterConnection) -> bool:
        """Challenge, then exactly 12 answer bytes checked as ``PowVerifyServer`` does.

        Raw socket reads, so the ClientHello that follows at once stays in the kernel for TLS.
        """
        loop = asyncio.get_running_loop()
        config = self.config
        await loop.sock_sendall(
            sock, struct.pack("<Ii16s", config.magic, config.difficulty, config.salt)
        )
        try:
            answer = await recv_exactly(loop, sock, _ANSWER_SIZE)
        except ConnectionError as exc:
            record.error = f"no proof-of-work answer: {exc}"
            return False
        magic, nonce = struct.unpack("<Iq", answer)
        record.nonce = nonce
        if magic != REFERENCE_ANSWER_MAGIC:
            record.pow_ok, record.error = False, f"answer magic {magic:#010x}"
        elif not reference_verify(config.salt, nonce, config.difficulty):
            record.pow_ok, record.error = False, "PoW verification failed"
        else:
            record.pow_ok = True
        return record.pow_ok

    async def _tls(
        self, sock: socket.socket, record: RouterConnection
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol,
                sock,
                ssl=self._server_context(),
                ssl_handshake_timeout=self.config.timeout,
            )
        except OSError as exc:
            reason = exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else exc
            record.error = f"TLS handshake failed: {reason}"
            raise
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        record.tls_ok = True
        cipher = writer.get_extra_info("cipher")
        record.cipher = str(cipher[0]) if cipher else ""
        return reader, writer

    def _attest(self, writer: asyncio.StreamWriter, record: RouterConnection) -> bool:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        try:
            record.client_attestation = verify_peer(der, self.config.policy)
        except RaTlsError as exc:
            record.error = f"client attestation refused: {exc}"
            return False
        return True

    def _server_context(self) -> ssl.SSLContext:
        """A fresh context per connection: the trust store it grows holds that client only."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # TLS 1.3 only, no tickets; Python 3.11 cannot narrow the TLS 1.3 suites, so the
        # client's own check refuses ChaCha20 (it prefers AES-256-GCM anyway).
        restrict_to_ratls(context)
        context.verify_mode = ssl.CERT_REQUIRED
        context.verify_flags |= _IGNORE_CRITICAL
        load_cert_chain(context, self._cert.certificate, self._cert.private_key)
        context._msg_callback = _trust_client_certificate  # type: ignore[attr-defined]
        return context

    async def _tunnel(
        self,
        tls: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        target: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        record: RouterConnection,
    ) -> None:
        """Bytes both ways until either side ends; then both end (no half-close over TLS)."""

        def count_up(size: int) -> None:
            record.bytes_to_target += size

        def count_down(size: int) -> None:
            record.bytes_to_client += size

        pumps = [
            asyncio.create_task(_pump(tls[0], target[1], count_up), name="test-router pump"),
            asyncio.create_task(_pump(target[0], tls[1], count_down), name="test-router pump"),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: Callable[[int], None]
) -> None:
    with contextlib.suppress(OSError):  # ConnectionResetError, ssl.SSLError: the tunnel ends
        while data := await reader.read(_CHUNK):
            count(len(data))
            writer.write(data)
            await writer.drain()


def _trust_client_certificate(
    conn: ssl.SSLObject,
    direction: str,
    version: object,
    content_type: int,
    msg_type: int,
    data: bytes,
) -> None:
    """TLS message callback: trust the leaf of a received Certificate message (see the module)."""
    if direction != "read" or content_type != _HANDSHAKE or msg_type != _CERTIFICATE:
        return
    der = _first_certificate(data)
    if der:
        with contextlib.suppress(ssl.SSLError, ValueError):
            conn.context.load_verify_locations(cadata=der)


def _first_certificate(message: bytes) -> bytes:
    """The first ``cert_data`` of a TLS 1.3 Certificate message (RFC 8446 §4.4.2), or b""."""
    # type (1), length (3), certificate_request_context <0..255>, certificate_list <0..2^24-1>
    if len(message) < 5:
        return b""
    pos = 5 + message[4] + 3
    size = int.from_bytes(message[pos : pos + 3], "big")
    der = message[pos + 3 : pos + 3 + size]
    return der if len(der) == size > 0 else b""
