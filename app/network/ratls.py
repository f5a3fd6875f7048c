"""The RA-TLS step of the router leg, client side: our identity, the TLS context, the upgrade.

See docs/protocol.md §2.4. The TCP connection has already carried the proof of work in plaintext;
:func:`upgrade` turns that same transport into mutual TLS 1.3 and then checks the peer's
certificate with our own verifier (:mod:`app.network.ratls_cert`), because OpenSSL's chain
verification knows neither self-signed peers nor the private TDX extensions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import ssl
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
)

from app.network.ratls_cert import (
    PeerAttestation,
    RaTlsAttestationError,
    RaTlsCertificateError,
    RaTlsError,
    RaTlsExtensionError,
    RaTlsKeyError,
    RaTlsPolicy,
    RaTlsPolicyError,
    RaTlsValidityError,
    build_certificate,
    check_policy,
    raw_public_key,
    verify_peer,
)

__all__ = [
    "ALLOWED_CIPHERS",
    "PeerAttestation",
    "RaTlsAttestationError",
    "RaTlsCertificateError",
    "RaTlsError",
    "RaTlsExtensionError",
    "RaTlsHandshakeError",
    "RaTlsKeyError",
    "RaTlsPolicy",
    "RaTlsPolicyError",
    "RaTlsTimeoutError",
    "RaTlsValidityError",
    "TlsIdentity",
    "check_negotiated",
    "client_context",
    "load_cert_chain",
    "make_identity",
    "restrict_to_ratls",
    "upgrade",
    "verify_peer",
]

ALLOWED_CIPHERS = frozenset({"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"})


class RaTlsHandshakeError(RaTlsError):
    """The TLS handshake itself failed or negotiated something the router leg does not allow."""


class RaTlsTimeoutError(RaTlsError, TimeoutError):
    """The peer did not finish the TLS handshake in time."""


@dataclass(frozen=True)
class TlsIdentity:
    """This run's RA-TLS key and self-signed certificate; the key is never printed."""

    policy: RaTlsPolicy
    certificate: x509.Certificate
    private_key: Ed25519PrivateKey = field(repr=False)

    @property
    def cert_der(self) -> bytes:
        """The certificate as DER, as the peer receives it."""
        return self.certificate.public_bytes(Encoding.DER)

    @property
    def public_key(self) -> bytes:
        """The 32 raw bytes of our Ed25519 public key (our user claims)."""
        return raw_public_key(self.private_key.public_key())


def make_identity(policy: str, *, now: datetime | None = None) -> TlsIdentity:
    """A fresh Ed25519 key and its one-day certificate, with a fake quote under ``fake_tdx``."""
    checked = check_policy(policy)
    key = Ed25519PrivateKey.generate()
    moment = datetime.now(UTC) if now is None else now
    return TlsIdentity(checked, build_certificate(key, checked, moment), key)


def restrict_to_ratls(context: ssl.SSLContext) -> None:
    """TLS 1.3 only, no session tickets, and the two AES-GCM suites where Python can say so.

    Python's ``ssl`` has no way to set TLS 1.3 suites before ``SSLContext.set_ciphersuites``
    (added after 3.13), so there OpenSSL's default list is offered (3.x: AES-256-GCM,
    ChaCha20-Poly1305, AES-128-GCM); :func:`check_negotiated` refuses ChaCha20 afterwards.
    """
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.options |= ssl.OP_NO_TICKET
    set_ciphersuites = getattr(context, "set_ciphersuites", None)
    if set_ciphersuites is not None:
        set_ciphersuites(":".join(sorted(ALLOWED_CIPHERS)))


def load_cert_chain(
    context: ssl.SSLContext,
    certificate: x509.Certificate,
    private_key: CertificateIssuerPrivateKeyTypes,
) -> None:
    """Give ``context`` a certificate and key, which ``ssl`` only reads from files.

    The files live in a fresh 0700 folder for the moment of loading, and the key in them is
    encrypted with a one-off password, so no readable copy of it ever reaches the disk.
    """
    password = secrets.token_bytes(32)
    key_pem = private_key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(password)
    )
    with tempfile.TemporaryDirectory(prefix="cocoon-ratls-") as folder:
        cert_path = _write_private(
            Path(folder) / "cert.pem", certificate.public_bytes(Encoding.PEM)
        )
        key_path = _write_private(Path(folder) / "key.pem", key_pem)
        try:
            context.load_cert_chain(cert_path, key_path, password=password)
        except ssl.SSLError as exc:
            raise RaTlsError(f"OpenSSL refused our RA-TLS certificate: {exc.reason}") from exc


def _write_private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def client_context(identity: TlsIdentity) -> ssl.SSLContext:
    """The client side of the router leg's TLS, presenting ``identity``.

    OpenSSL verifies nothing (no CA could vouch for a self-signed RA-TLS peer, and its
    critical TDX extensions are unknown to OpenSSL); :func:`upgrade` runs our verifier instead.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    restrict_to_ratls(context)
    load_cert_chain(context, identity.certificate, identity.private_key)
    return context


def check_negotiated(ssl_object: Any) -> tuple[str, str]:
    """The negotiated protocol and cipher, or :class:`RaTlsHandshakeError` if not allowed."""
    version = ssl_object.version() if ssl_object is not None else None
    cipher = ssl_object.cipher() if ssl_object is not None else None
    if version != "TLSv1.3":
        raise RaTlsHandshakeError(f"the peer negotiated {version or 'no TLS'}, not TLSv1.3")
    if cipher is None or cipher[0] not in ALLOWED_CIPHERS:
        name = cipher[0] if cipher else "no cipher"
        raise RaTlsHandshakeError(
            f"the peer negotiated {name}, which the router leg does not allow"
        )
    return str(version), str(cipher[0])


async def upgrade(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    context: ssl.SSLContext,
    *,
    policy: str,
    timeout: float,  # noqa: ASYNC109 - the handshake has its own deadline, like socks5_connect
    now: datetime | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, PeerAttestation]:
    """Run mutual TLS on the connection's existing transport, then verify the peer's certificate.

    The same reader and writer carry the decrypted stream afterwards. On any failure the
    connection is aborted and a :class:`RaTlsError` subclass is raised.
    """
    checked = check_policy(policy)
    if not timeout > 0:  # also refuses NaN
        raise ValueError(f"the TLS handshake timeout must be positive, got {timeout}")
    try:
        async with asyncio.timeout(timeout):
            # asyncio's own handshake deadline is set past ours so the typed timeout fires first.
            await writer.start_tls(context, ssl_handshake_timeout=timeout * 2 + 1)
    except TimeoutError as exc:
        _abort(writer)
        raise RaTlsTimeoutError(f"the peer did not finish TLS within {timeout:g} s") from exc
    except (ssl.SSLError, OSError) as exc:
        _abort(writer)
        raise RaTlsHandshakeError(f"the TLS handshake failed: {_describe(exc)}") from exc
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        check_negotiated(ssl_object)
        der = ssl_object.getpeercert(binary_form=True)
        if not der:
            raise RaTlsHandshakeError("the peer presented no certificate")
        attestation = verify_peer(der, checked, now)
    except BaseException:
        _abort(writer)
        raise
    return reader, writer, attestation


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _abort(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.transport.abort()
