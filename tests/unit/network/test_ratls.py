"""RA-TLS of the router leg (docs/protocol.md §2.4): our certificate, the upgrade, the verifier."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ObjectIdentifier

from app.network.ratls import (
    ALLOWED_CIPHERS,
    PeerAttestation,
    RaTlsAttestationError,
    RaTlsCertificateError,
    RaTlsExtensionError,
    RaTlsHandshakeError,
    RaTlsKeyError,
    RaTlsPolicyError,
    RaTlsTimeoutError,
    RaTlsValidityError,
    TlsIdentity,
    check_negotiated,
    client_context,
    make_identity,
    upgrade,
    verify_peer,
)
from tests.unit.network.ratls_server import (
    ANSWER_SIZE,
    CHALLENGE,
    RaTlsServer,
    ServerCert,
    forged_cert,
    from_identity,
    good_fake_tdx_cert,
)

# DER of an extension: OID 1.3.6.1.4.1.12345.n, BOOLEAN TRUE (critical), OCTET STRING of length n.
_QUOTE_OID = bytes.fromhex("06082b06010401e03901")
_QUOTE_HEADER = _QUOTE_OID + bytes.fromhex("0101ff0440")
_CLAIMS_HEADER = bytes.fromhex("06082b06010401e03902") + bytes.fromhex("0101ff0420")


async def _dial(
    server: RaTlsServer, identity: TlsIdentity, policy: str, *, limit: float = 10.0
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, PeerAttestation]:
    reader, writer = await asyncio.open_connection(*server.address)
    assert await reader.readexactly(len(CHALLENGE)) == CHALLENGE
    writer.write(bytes(ANSWER_SIZE))  # the proof-of-work answer travels in plaintext first
    return await upgrade(reader, writer, client_context(identity), policy=policy, timeout=limit)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("policy", ["any", "fake_tdx"])
async def test_mutual_handshake_verifies_both_sides(policy: str) -> None:
    ours = make_identity(policy)
    theirs = make_identity(policy)
    async with RaTlsServer(
        from_identity(theirs), client_cert_der=ours.cert_der, client_policy=policy
    ) as server:
        reader, writer, peer = await _dial(server, ours, policy)
        writer.write(b"ping\n")
        assert await reader.readline() == b"ping\n"
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"
        assert writer.get_extra_info("cipher")[0] in ALLOWED_CIPHERS
        await _close(writer)
    assert peer == PeerAttestation(
        policy=policy,  # type: ignore[arg-type]
        public_key=theirs.public_key,
        quote_present=policy == "fake_tdx",
        attested=policy == "fake_tdx",
    )
    assert server.client_attestation is not None
    assert server.client_attestation.public_key_hex == ours.public_key.hex()
    assert server.client_attestation.attested is (policy == "fake_tdx")


def test_our_certificate_is_what_the_reference_builds() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    identity = make_identity("fake_tdx", now=now)
    cert = identity.certificate
    der = identity.cert_der
    assert isinstance(cert.public_key(), ed25519.Ed25519PublicKey)
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=1)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    # Raw bytes straight inside the extension's OCTET STRING, as ASN1_OCTET_STRING_set leaves them.
    assert _CLAIMS_HEADER + identity.public_key in der
    assert _QUOTE_HEADER + hashlib.sha512(identity.public_key).digest() in der
    assert verify_peer(der, "fake_tdx", now).attested


def test_any_identity_carries_claims_but_no_quote() -> None:
    identity = make_identity("any")
    assert _CLAIMS_HEADER + identity.public_key in identity.cert_der
    assert _QUOTE_OID not in identity.cert_der
    assert verify_peer(identity.cert_der, "any") == PeerAttestation(
        "any", identity.public_key, quote_present=False, attested=False
    )


def test_the_private_key_is_not_in_the_repr() -> None:
    assert "private_key" not in repr(make_identity("any"))


def test_key_files_are_gone_after_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    client_context(make_identity("fake_tdx"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("bad", "policy", "error"),
    [
        pytest.param(lambda: forged_cert(key=_rsa()), "any", RaTlsKeyError, id="rsa-key"),
        pytest.param(
            lambda: forged_cert(quote=bytes(64)),
            "fake_tdx",
            RaTlsAttestationError,
            id="wrong-quote",
        ),
        pytest.param(
            lambda: forged_cert(not_before=datetime.now(UTC) - timedelta(days=3)),
            "any",
            RaTlsValidityError,
            id="expired",
        ),
        pytest.param(
            lambda: forged_cert(extra_critical=ObjectIdentifier("1.3.6.1.4.1.12345.99")),
            "any",
            RaTlsExtensionError,
            id="unknown-critical-extension",
        ),
    ],
)
async def test_a_bad_server_certificate_is_refused(
    bad: object, policy: str, error: type[Exception]
) -> None:
    assert callable(bad)
    server_cert: ServerCert = bad()
    ours = make_identity(policy)
    async with RaTlsServer(server_cert, client_cert_der=ours.cert_der) as server:
        with pytest.raises(error):
            await _dial(server, ours, policy)


async def test_a_server_that_stalls_mid_tls_times_out() -> None:
    ours = make_identity("any")
    theirs = make_identity("any")
    async with RaTlsServer(
        from_identity(theirs), client_cert_der=ours.cert_der, mode="stall"
    ) as server:
        with pytest.raises(RaTlsTimeoutError, match="did not finish TLS"):
            await _dial(server, ours, "any", limit=0.2)


async def test_a_server_that_does_not_speak_tls_is_a_handshake_error() -> None:
    ours = make_identity("any")
    async with RaTlsServer(
        from_identity(make_identity("any")), client_cert_der=ours.cert_der, mode="garbage"
    ) as server:
        with pytest.raises(RaTlsHandshakeError, match="TLS handshake failed"):
            await _dial(server, ours, "any")


async def test_a_server_without_a_quote_fails_fake_tdx() -> None:
    ours = make_identity("fake_tdx")
    async with RaTlsServer(
        from_identity(make_identity("any")), client_cert_der=ours.cert_der
    ) as server:
        with pytest.raises(RaTlsAttestationError, match="no TDX quote"):
            await _dial(server, ours, "fake_tdx")


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    ("cert", "policy", "error", "message"),
    [
        (
            lambda: forged_cert(key=ec.generate_private_key(ec.SECP256R1())),
            "any",
            RaTlsKeyError,
            "ECDSA",
        ),
        (
            lambda: forged_cert(signer=ed25519.Ed25519PrivateKey.generate()),
            "any",
            RaTlsCertificateError,
            "self-signed",
        ),
        (
            lambda: forged_cert(not_before=datetime.now(UTC) + timedelta(hours=1)),
            "any",
            RaTlsValidityError,
            "not valid before",
        ),
        (lambda: forged_cert(quote=bytes(63)), "fake_tdx", RaTlsAttestationError, "63 bytes"),
        (lambda: forged_cert(quote=bytes(40_000)), "any", RaTlsExtensionError, "more than"),
        (good_fake_tdx_cert, "tdx", RaTlsPolicyError, "not supported"),
    ],
    ids=["ecdsa-key", "signed-by-another-key", "not-yet-valid", "short-quote", "huge-quote", "tdx"],
)
def test_the_verifier_names_the_broken_rule(
    cert: object, policy: str, error: type[Exception], message: str
) -> None:
    assert callable(cert)
    server_cert: ServerCert = cert()
    with pytest.raises(error, match=message):
        verify_peer(server_cert.der, policy)


def test_the_verifier_accepts_a_matching_fake_quote() -> None:
    assert verify_peer(good_fake_tdx_cert().der, "fake_tdx").quote_present


@pytest.mark.parametrize("der", [b"", b"\x30\x03\x02\x01\x00", bytes(100)])
def test_garbage_is_not_a_certificate(der: bytes) -> None:
    with pytest.raises(RaTlsCertificateError):
        verify_peer(der, "any")


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_peer(make_identity("any").cert_der, "any", datetime(2026, 1, 1))


def test_make_identity_refuses_an_unknown_policy() -> None:
    with pytest.raises(RaTlsPolicyError):
        make_identity("tdx")


class _Negotiated:
    def __init__(self, version: str, cipher: str) -> None:
        self._version, self._cipher = version, cipher

    def version(self) -> str:
        return self._version

    def cipher(self) -> tuple[str, str, int]:
        return self._cipher, self._version, 256


@pytest.mark.parametrize(
    ("version", "cipher"),
    [("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"), ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384")],
)
def test_a_suite_outside_the_two_is_refused(version: str, cipher: str) -> None:
    with pytest.raises(RaTlsHandshakeError):
        check_negotiated(_Negotiated(version, cipher))
    assert check_negotiated(_Negotiated("TLSv1.3", "TLS_AES_128_GCM_SHA256"))[0] == "TLSv1.3"
