"""RA-TLS certificates of the COCOON router leg: building ours and verifying the peer's.

See docs/protocol.md §2.4. The layout mirrors the reference C++ (``tee/cocoon/tdx.cpp``:
``generate_self_signed_cert``, ``generate_tdx_self_signed_cert``, ``struct Verifier``,
``DefaultPolicy``, ``FakeTdxInterface``): a self-signed Ed25519 certificate whose two private
critical extensions hold their content as the raw bytes of the extension's OCTET STRING (no
further DER wrapping), the user claims being just the 32-byte public key.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

RaTlsPolicy = Literal["any", "fake_tdx"]
POLICIES: tuple[RaTlsPolicy, ...] = ("any", "fake_tdx")

TDX_QUOTE_OID = ObjectIdentifier("1.3.6.1.4.1.12345.1")
USER_CLAIMS_OID = ObjectIdentifier("1.3.6.1.4.1.12345.2")
VALIDITY = timedelta(days=1)
# A peer whose clock runs a little behind ours would otherwise see a certificate that is not
# valid yet; the reference Go client backdates by the same minute.
BACKDATE = timedelta(minutes=1)
FAKE_QUOTE_SIZE = 64
# The reference's hard cap on the quote extension (MAX_TDX_QUOTE_EXTENSION_SIZE, 32 KiB).
MAX_QUOTE_SIZE = 32 * 1024

# Critical extensions OpenSSL itself handles (X509_supported_extension, crypto/x509/v3_purp.c).
# The reference verifier lets OpenSSL judge those and refuses any other critical extension
# except the two TDX ones, so a certificate OpenSSL would reject we reject too.
_OPENSSL_HANDLED = frozenset(
    ObjectIdentifier(oid)
    for oid in (
        "2.16.840.1.113730.1.1",  # Netscape cert type
        "2.5.29.15",  # key usage
        "2.5.29.17",  # subject alternative name
        "2.5.29.19",  # basic constraints
        "2.5.29.32",  # certificate policies
        "2.5.29.31",  # CRL distribution points
        "2.5.29.37",  # extended key usage
        "1.3.6.1.5.5.7.1.7",  # RFC 3779 IP address blocks
        "1.3.6.1.5.5.7.1.8",  # RFC 3779 AS identifiers
        "1.3.6.1.5.5.7.48.1.5",  # OCSP no-check
        "2.5.29.36",  # policy constraints
        "1.3.6.1.5.5.7.1.14",  # proxy certificate info
        "2.5.29.30",  # name constraints
        "2.5.29.33",  # policy mappings
        "2.5.29.54",  # inhibit anyPolicy
    )
)


class RaTlsError(ConnectionError):
    """The RA-TLS step with the peer failed; the message says why in plain words."""


class RaTlsPolicyError(RaTlsError):
    """An attestation policy this app does not implement was asked for."""


class RaTlsCertificateError(RaTlsError):
    """The peer's certificate is malformed or not self-signed."""


class RaTlsKeyError(RaTlsError):
    """The peer's certificate key is not Ed25519."""


class RaTlsValidityError(RaTlsError):
    """The peer's certificate is expired or not valid yet."""


class RaTlsExtensionError(RaTlsError):
    """The peer's certificate has a critical extension nobody handles, or an oversized one."""


class RaTlsAttestationError(RaTlsError):
    """The peer's attestation does not satisfy the policy."""


@dataclass(frozen=True)
class PeerAttestation:
    """What the verifier established about the peer, for the worker's status."""

    policy: RaTlsPolicy
    public_key: bytes
    quote_present: bool
    # True when the policy checked a quote bound to the key (fake_tdx), False under ``any``.
    attested: bool

    @property
    def public_key_hex(self) -> str:
        """The peer's Ed25519 public key as 64 hex digits."""
        return self.public_key.hex()


def check_policy(policy: str) -> RaTlsPolicy:
    """``policy`` narrowed to a supported one, or :class:`RaTlsPolicyError`."""
    for known in POLICIES:
        if policy == known:
            return known
    raise RaTlsPolicyError(
        f"attestation policy {policy!r} is not supported (supported: {', '.join(POLICIES)})"
    )


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key (the reference's user claims)."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def fake_quote(public_key: bytes) -> bytes:
    """The fake TDX quote of a key: its report data, SHA-512 of the serialized user claims."""
    return hashlib.sha512(public_key).digest()


_DIGITAL_SIGNATURE_ONLY = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def build_certificate(
    private_key: Ed25519PrivateKey, policy: RaTlsPolicy, now: datetime
) -> x509.Certificate:
    """A self-signed certificate for ``private_key`` as the reference router builds one."""
    public_key = raw_public_key(private_key.public_key())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cocoon-provider"),
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        ]
    )
    not_before = now - BACKDATE
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + VALIDITY)
    )
    # Same order as the reference: the custom extensions first, quote before claims.
    if policy == "fake_tdx":
        builder = builder.add_extension(
            x509.UnrecognizedExtension(TDX_QUOTE_OID, fake_quote(public_key)), critical=True
        )
    builder = (
        builder.add_extension(x509.UnrecognizedExtension(USER_CLAIMS_OID, public_key), True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_DIGITAL_SIGNATURE_ONLY, critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()), critical=False
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
    )
    return builder.sign(private_key, algorithm=None)


def verify_peer(der: bytes, policy: str, now: datetime | None = None) -> PeerAttestation:
    """Check a peer's DER certificate the way the reference verifier does, under ``policy``.

    Raises a :class:`RaTlsError` subclass naming the first rule the certificate breaks.
    """
    checked_policy = check_policy(policy)
    moment = datetime.now(UTC) if now is None else now
    if moment.tzinfo is None:
        raise ValueError("verify_peer needs a timezone-aware time")
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise RaTlsCertificateError(
            "the peer certificate is not a valid X.509 certificate"
        ) from exc
    public_key = _ed25519_key(cert)
    _check_self_signed(cert)
    _check_validity(cert, moment)
    quote = _attestation_extensions(cert)
    if checked_policy == "fake_tdx":
        _check_fake_quote(quote, public_key)
    return PeerAttestation(
        policy=checked_policy,
        public_key=public_key,
        quote_present=quote is not None,
        attested=checked_policy == "fake_tdx",
    )


def _ed25519_key(cert: x509.Certificate) -> bytes:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise RaTlsKeyError("the peer certificate's public key cannot be read") from exc
    if not isinstance(key, Ed25519PublicKey):
        kind = _key_kind(key)
        raise RaTlsKeyError(f"the peer certificate's key is {kind}, but only Ed25519 is accepted")
    return raw_public_key(key)


def _key_kind(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ECDSA"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    return "unsupported"


def _check_self_signed(cert: x509.Certificate) -> None:
    # Chains are refused: the certificate must be its own issuer (depth 0).
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise RaTlsCertificateError("the peer certificate is not validly self-signed") from exc


def _check_validity(cert: x509.Certificate, now: datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise RaTlsValidityError(
            f"the peer certificate is not valid before {cert.not_valid_before_utc.isoformat()}"
        )
    if now > cert.not_valid_after_utc:
        raise RaTlsValidityError(
            f"the peer certificate expired at {cert.not_valid_after_utc.isoformat()}"
        )


def _attestation_extensions(cert: x509.Certificate) -> bytes | None:
    """The raw quote, if any, after refusing unhandled critical extensions."""
    try:
        extensions = list(cert.extensions)
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise RaTlsCertificateError(
            f"the peer certificate's extensions are malformed: {exc}"
        ) from exc
    quote: bytes | None = None
    for ext in extensions:
        if ext.oid == TDX_QUOTE_OID:
            quote = _raw_value(ext)
            if len(quote) > MAX_QUOTE_SIZE:
                raise RaTlsExtensionError(
                    f"the peer's TDX quote is {len(quote)} bytes, more than {MAX_QUOTE_SIZE}"
                )
        elif ext.critical and ext.oid != USER_CLAIMS_OID and ext.oid not in _OPENSSL_HANDLED:
            raise RaTlsExtensionError(
                f"the peer certificate has an unknown critical extension {ext.oid.dotted_string}"
            )
    return quote


def _raw_value(ext: x509.Extension[x509.ExtensionType]) -> bytes:
    if not isinstance(ext.value, x509.UnrecognizedExtension):  # pragma: no cover - private OID
        raise RaTlsCertificateError(f"extension {ext.oid.dotted_string} has an unexpected form")
    return ext.value.value


def _check_fake_quote(quote: bytes | None, public_key: bytes) -> None:
    if quote is None:
        raise RaTlsAttestationError("the peer sent no TDX quote, which policy fake_tdx requires")
    if len(quote) != FAKE_QUOTE_SIZE:
        raise RaTlsAttestationError(
            f"the peer's fake TDX quote is {len(quote)} bytes, expected {FAKE_QUOTE_SIZE}"
        )
    if not hmac.compare_digest(quote, fake_quote(public_key)):
        raise RaTlsAttestationError(
            "the peer's fake TDX quote does not match its public key (report data mismatch)"
        )
