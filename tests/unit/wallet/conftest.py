"""Wallet test fixtures: the public test-vector wallet, fast Argon2 parameters, key pairs."""

from __future__ import annotations

import nacl.pwhash
import pytest

from app.wallet.mnemonic import KeyPair, Mnemonic, derive_keypair, parse_mnemonic
from app.wallet.vault import KdfParams

# The public test vector (docs/wallet.md §2.4): never fund it on mainnet.
TEST_VECTOR_PHRASE = (
    "decorate loyal transfer actual middle february anger trick rescue wet shove autumn "
    "gossip banner mirror embody stem iron attack corn cycle actor used steel"
)
TEST_VECTOR_PUBLIC_KEY = "056d239b10792a07a542ab53a8b8e75b5b7a8e00bedf93b56d74fdaee67259d0"


@pytest.fixture(scope="session")
def vector_mnemonic() -> Mnemonic:
    return parse_mnemonic(TEST_VECTOR_PHRASE)


@pytest.fixture(scope="session")
def vector_keys(vector_mnemonic: Mnemonic) -> KeyPair:
    return derive_keypair(vector_mnemonic)


@pytest.fixture
def fast_kdf() -> KdfParams:
    """The cheapest Argon2id parameters libsodium allows, so vault tests stay fast."""
    return KdfParams(
        opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN, memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN
    )
