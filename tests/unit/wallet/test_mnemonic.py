"""Creating, importing and deriving keys from TON mnemonics, with every bad input named."""

from __future__ import annotations

import pickle

import pytest

from app.wallet.mnemonic import (
    KeyPair,
    Mnemonic,
    MnemonicError,
    derive_keypair,
    generate_mnemonic,
    is_bip39_phrase,
    parse_mnemonic,
)
from tests.unit.wallet.conftest import TEST_VECTOR_PHRASE, TEST_VECTOR_PUBLIC_KEY

# A valid BIP-39 phrase (the well-known all-zero-entropy vector), not a TON phrase.
BIP39_24 = " ".join(["abandon"] * 23 + ["art"])
BIP39_12 = " ".join(["abandon"] * 11 + ["about"])


def test_generated_mnemonic_round_trips_through_the_strict_parser() -> None:
    mnemonic = generate_mnemonic()
    assert len(mnemonic.words) == 24
    assert parse_mnemonic(mnemonic.phrase()) == mnemonic


def test_test_vector_derives_the_documented_public_key(vector_mnemonic: Mnemonic) -> None:
    assert derive_keypair(vector_mnemonic).public_key.hex() == TEST_VECTOR_PUBLIC_KEY


@pytest.mark.parametrize(
    "text",
    [
        TEST_VECTOR_PHRASE.upper(),
        "  " + TEST_VECTOR_PHRASE.replace(" ", "   \n") + "\t",
        TEST_VECTOR_PHRASE.replace(" ", ", "),
        " ".join(f"{i}. {w}" for i, w in enumerate(TEST_VECTOR_PHRASE.split(), start=1)),
    ],
    ids=["upper-case", "extra-whitespace", "commas", "numbered"],
)
def test_import_normalises_case_whitespace_commas_and_numbering(text: str) -> None:
    assert parse_mnemonic(text).phrase() == TEST_VECTOR_PHRASE


@pytest.mark.parametrize("text", ["", "   \n\t ", ",,,"])
def test_empty_input_asks_for_the_phrase(text: str) -> None:
    with pytest.raises(MnemonicError, match="Enter your 24-word"):
        parse_mnemonic(text)


def test_unknown_word_is_named_with_its_position() -> None:
    words = TEST_VECTOR_PHRASE.split()
    words[6] = "zz331"
    with pytest.raises(MnemonicError, match=r"Word 7 \('zz331'\) is not in the TON word list"):
        parse_mnemonic(" ".join(words))


def test_wrong_word_count_is_reported() -> None:
    words = TEST_VECTOR_PHRASE.split()[:23]
    with pytest.raises(MnemonicError, match="has 24 words; this one has 23") as info:
        parse_mnemonic(" ".join(words))
    assert "BIP-39" not in info.value.message


def test_swapped_words_fail_the_ton_seed_check() -> None:
    words = TEST_VECTOR_PHRASE.split()
    words[0], words[1] = words[1], words[0]
    with pytest.raises(MnemonicError, match="not a valid TON recovery phrase"):
        parse_mnemonic(" ".join(words))


@pytest.mark.parametrize("phrase", [BIP39_24, BIP39_12], ids=["24-words", "12-words"])
def test_bip39_phrase_is_rejected_with_a_message_saying_so(phrase: str) -> None:
    assert is_bip39_phrase(phrase.split())
    with pytest.raises(MnemonicError, match="BIP-39"):
        parse_mnemonic(phrase)


def test_bip39_detection_needs_the_checksum_and_known_words() -> None:
    assert not is_bip39_phrase(["abandon"] * 24)  # checksum word wrong
    assert not is_bip39_phrase(["abandon"] * 23 + ["zz331"])
    assert not is_bip39_phrase(["abandon"] * 13)


def test_errors_never_repeat_the_phrase() -> None:
    words = TEST_VECTOR_PHRASE.split()
    words[0], words[1] = words[1], words[0]
    with pytest.raises(MnemonicError) as info:
        parse_mnemonic(" ".join(words))
    text = info.value.describe()
    assert not any(word in text.lower().split() for word in words)


def test_secrets_do_not_show_in_repr_str_or_pickle(
    vector_mnemonic: Mnemonic, vector_keys: KeyPair
) -> None:
    for text in (repr(vector_mnemonic), str(vector_mnemonic), f"{[vector_mnemonic]}"):
        assert "decorate" not in text
        assert "hidden" in text
    secret_hex = vector_keys._secret_key[:32].hex()
    assert secret_hex not in repr(vector_keys)
    assert secret_hex not in str(vector_keys)
    assert TEST_VECTOR_PUBLIC_KEY in repr(vector_keys)
    with pytest.raises(TypeError):
        pickle.dumps(vector_mnemonic)
    with pytest.raises(TypeError):
        pickle.dumps(vector_keys)
    with pytest.raises(TypeError):
        hash(vector_mnemonic)


def test_mnemonic_equality(vector_mnemonic: Mnemonic) -> None:
    assert vector_mnemonic == parse_mnemonic(TEST_VECTOR_PHRASE)
    assert vector_mnemonic != generate_mnemonic()
    assert vector_mnemonic != TEST_VECTOR_PHRASE


def test_keypair_signs_verifiably_and_rejects_bad_lengths(vector_keys: KeyPair) -> None:
    from nacl.signing import VerifyKey

    digest = bytes(range(32))
    VerifyKey(vector_keys.public_key).verify(digest, vector_keys.sign(digest))
    with pytest.raises(ValueError, match="Ed25519"):
        KeyPair(b"\0" * 31, b"\0" * 64)
