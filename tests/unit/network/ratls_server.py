"""A test-side RA-TLS router on loopback, and certificates good and bad for it to present.

The server plays the proxy router's part of docs/protocol.md §2.4: a plaintext preamble in the
shape of the proof of work, then mutual TLS 1.3 that requires a client certificate, then our own
verifier applied to that certificate, then an echo of one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID, ObjectIdentifier

from app.network.peer_info import recv_exactly
from app.network.ratls import (
    PeerAttestation,
    RaTlsError,
    TlsIdentity,
    load_cert_chain,
    restrict_to_ratls,
    verify_peer,
)
from app.network.ratls_cert import TDX_QUOTE_OID, USER_CLAIMS_OID, fake_quote, raw_public_key

CHALLENGE = b"\x91\x12\x8e\x41" + (20).to_bytes(4, "little") + bytes(16)
ANSWER_SIZE = 12
# OpenSSL's X509_V_FLAG_IGNORE_CRITICAL, which Python's ssl.VerifyFlags does not name. It plays
# the reference verifier's part of accepting X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION.
_IGNORE_CRITICAL = ssl.VerifyFlags(0x10)


@dataclass(frozen=True)
class ServerCert:
    """A certificate and key for the test server to present; any key type, any content."""

    certificate: x509.Certificate
    private_key: CertificateIssuerPrivateKeyTypes = field(repr=False)

    @property
    def der(self) -> bytes:
        """The certificate as DER."""
        return self.certificate.public_bytes(Encoding.DER)


def from_identity(identity: TlsIdentity) -> ServerCert:
    """The server side of a well-formed identity made by the app."""
    return ServerCert(identity.certificate, identity.private_key)


def forged_cert(
    *,
    key: CertificateIssuerPrivateKeyTypes | None = None,
    quote: bytes | None = None,
    not_before: datetime | None = None,
    lifetime: timedelta = timedelta(days=1),
    extra_critical: ObjectIdentifier | None = None,
    signer: CertificateIssuerPrivateKeyTypes | None = None,
) -> ServerCert:
    """A self-signed certificate with whatever flaw the arguments ask for."""
    private_key = key if key is not None else ed25519.Ed25519PrivateKey.generate()
    start = not_before if not_before is not None else datetime.now(UTC) - timedelta(minutes=1)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + lifetime)
    )
    if quote is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(TDX_QUOTE_OID, quote), True)
    public = private_key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        claims = raw_public_key(public)
        builder = builder.add_extension(x509.UnrecognizedExtension(USER_CLAIMS_OID, claims), True)
    if extra_critical is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(extra_critical, b"x"), True)
    signing_key = signer if signer is not None else private_key
    algorithm = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return ServerCert(builder.sign(signing_key, algorithm), private_key)


def good_fake_tdx_cert() -> ServerCert:
    """An Ed25519 certificate whose fake quote matches its key."""
    key = ed25519.Ed25519PrivateKey.generate()
    return forged_cert(key=key, quote=fake_quote(raw_public_key(key.public_key())))


class RaTlsServer:
    """A loopback RA-TLS server that requires and verifies the expected client certificate.

    The preamble goes over the raw socket, reading exactly its 12 bytes, so the ClientHello that
    follows at once stays in the kernel for TLS (a stream reader would buffer and lose it).
    """

    def __init__(
        self,
        cert: ServerCert,
        *,
        client_cert_der: bytes,
        client_policy: str = "any",
        mode: Literal["tls", "stall", "garbage"] = "tls",
    ) -> None:
        self._context = _server_context(cert, client_cert_der)
        self._client_policy = client_policy
        self._mode = mode
        self._listener: socket.socket | None = None
        self._acceptor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.client_attestation: PeerAttestation | None = None
        self.client_error: RaTlsError | None = None
        self.address = ("127.0.0.1", 0)

    async def __aenter__(self) -> RaTlsServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        self._listener = listener
        self.address = ("127.0.0.1", int(listener.getsockname()[1]))
        self._acceptor = asyncio.create_task(self._accept(listener))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._acceptor is not None
        assert self._listener is not None
        self._acceptor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._acceptor
        self._listener.close()
        if self._tasks:
            await asyncio.gather(*self._tasks)

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(listener)
            task = asyncio.create_task(self._serve(conn))
            self._tasks.add(task)

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        writer: asyncio.StreamWriter | None = None
        try:
            await loop.sock_sendall(conn, CHALLENGE)
            await recv_exactly(loop, conn, ANSWER_SIZE)
            if self._mode == "stall":
                # Swallow the ClientHello and never answer, until the client gives up.
                while await loop.sock_recv(conn, 65536):
                    pass
                return
            if self._mode == "garbage":
                await loop.sock_sendall(conn, b"HTTP/1.1 400 Bad Request\r\n\r\n")
                return
            reader = asyncio.StreamReader()
            protocol = asyncio.StreamReaderProtocol(reader)
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, conn, ssl=self._context
            )
            writer = asyncio.StreamWriter(transport, protocol, reader, loop)
            await self._after_handshake(reader, writer)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            return  # the client hung up, as it does after refusing our certificate
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
            conn.close()

    async def _after_handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        try:
            self.client_attestation = verify_peer(der, self._client_policy)
        except RaTlsError as exc:
            self.client_error = exc
            return
        line = await reader.readline()
        writer.write(line)
        await writer.drain()


def _server_context(cert: ServerCert, client_cert_der: bytes) -> ssl.SSLContext:
    # Python's ssl has no verify callback, so OpenSSL must accept the client itself: the expected
    # client certificate is the only trust anchor, and its TDX extensions are let through.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    restrict_to_ratls(context)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=client_cert_der)
    context.verify_flags |= _IGNORE_CRITICAL
    load_cert_chain(context, cert.certificate, cert.private_key)
    return context
