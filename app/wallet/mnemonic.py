"""TON mnemonics: creating, strictly importing (normalise, wordlist, seed check) and deriving keys.

Words and keys are held in objects whose ``repr``/``str`` reveal nothing, so a stray log line or
traceback cannot leak them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

from pytoniq_core.crypto.keys import (
    mnemonic_is_valid,
    mnemonic_new,
    mnemonic_to_private_key,
)
from pytoniq_core.crypto.keys import words as ton_wordlist
from pytoniq_core.crypto.signature import sign_message

from app.core.errors import UserFacingError

MNEMONIC_WORDS: Final = 24
_WORDLIST: Final[tuple[str, ...]] = tuple(ton_wordlist)
_WORD_INDEX: Final[dict[str, int]] = {word: index for index, word in enumerate(_WORDLIST)}
# Users paste phrases copied from numbered lists ("1. word 2) word"): numbers are not words.
_NUMBERING_RE: Final = re.compile(r"^\d+[.)]?$")
_SEPARATORS_RE: Final = re.compile(r"[\s,;]+")
_BIP39_WORD_COUNTS: Final = frozenset({12, 15, 18, 21, 24})


class MnemonicError(UserFacingError):
    """A recovery phrase that cannot be used (the message never repeats the phrase)."""


class Mnemonic:
    """A validated 24-word TON recovery phrase; prints as a placeholder, never as words."""

    __slots__ = ("_words",)

    def __init__(self, words: tuple[str, ...]) -> None:
        self._words = words

    @property
    def words(self) -> tuple[str, ...]:
        return self._words

    def phrase(self) -> str:
        """The words separated by single spaces (only for the vault and the show-once screen)."""
        return " ".join(self._words)

    def __repr__(self) -> str:
        return f"<Mnemonic: {len(self._words)} words, hidden>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mnemonic):
            return NotImplemented
        return hmac.compare_digest(self.phrase().encode(), other.phrase().encode())

    def __hash__(self) -> int:
        raise TypeError("Mnemonic is not hashable")

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("Mnemonic cannot be pickled")


class KeyPair:
    """An Ed25519 key pair derived from a mnemonic; ``repr`` shows only the public key."""

    __slots__ = ("_secret_key", "public_key")

    def __init__(self, public_key: bytes, secret_key: bytes) -> None:
        if len(public_key) != 32 or len(secret_key) != 64:
            raise ValueError("an Ed25519 key pair is a 32-byte public and a 64-byte secret key")
        self.public_key = public_key
        self._secret_key = secret_key

    def sign(self, digest: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``digest`` (a cell hash)."""
        return bytes(sign_message(digest, self._secret_key))

    def __repr__(self) -> str:
        return f"<KeyPair public={self.public_key.hex()}>"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("KeyPair cannot be pickled")


def generate_mnemonic() -> Mnemonic:
    """A fresh random 24-word TON mnemonic (CPU-bound, ~30 ms: call it off the event loop)."""
    return Mnemonic(tuple(mnemonic_new(MNEMONIC_WORDS)))


def parse_mnemonic(text: str) -> Mnemonic:
    """Normalise and strictly check a pasted recovery phrase.

    Accepts any case, extra whitespace, commas/semicolons and list numbering. Rejects: a wrong
    word count, a word that is not in the TON word list (named with its position so the user
    can fix the typo), a BIP-39 phrase from another wallet (said so), and words that fail the
    TON seed check.
    """
    words = [w for w in _SEPARATORS_RE.split(text.strip().lower()) if w]
    words = [w for w in words if not _NUMBERING_RE.match(w)]
    if not words:
        raise MnemonicError(
            "Enter your 24-word recovery phrase.", hint="Separate the words with spaces."
        )
    for position, word in enumerate(words, start=1):
        if word not in _WORD_INDEX:
            raise MnemonicError(
                f"Word {position} ('{word}') is not in the TON word list.",
                hint="Check its spelling against your written copy.",
            )
    if len(words) != MNEMONIC_WORDS:
        if len(words) in _BIP39_WORD_COUNTS and is_bip39_phrase(words):
            raise _bip39_error()
        raise MnemonicError(
            f"A TON recovery phrase has {MNEMONIC_WORDS} words; this one has {len(words)}.",
            hint="Make sure you copied every word.",
        )
    if not mnemonic_is_valid(words):
        if is_bip39_phrase(words):
            raise _bip39_error()
        raise MnemonicError(
            "These 24 words are not a valid TON recovery phrase.",
            hint="A word may be wrong or two words swapped; compare with your written copy.",
        )
    return Mnemonic(tuple(words))


def is_bip39_phrase(words: list[str]) -> bool:
    """True when ``words`` carry a valid BIP-39 checksum (Bitcoin/Ethereum-style phrases).

    TON phrases use the same word list but a different check; a phrase that passes BIP-39's
    checksum and fails TON's comes from another kind of wallet. (1 in 2**(n/3) TON phrases pass
    BIP-39 by chance; callers check TON validity first.)
    """
    if len(words) not in _BIP39_WORD_COUNTS or any(w not in _WORD_INDEX for w in words):
        return False
    bits = "".join(f"{_WORD_INDEX[w]:011b}" for w in words)
    checksum_bits = len(words) // 3
    entropy_bits = len(bits) - checksum_bits
    entropy = int(bits[:entropy_bits], 2).to_bytes(entropy_bits // 8, "big")
    digest = hashlib.sha256(entropy).digest()
    expected = f"{int.from_bytes(digest, 'big'):0256b}"[:checksum_bits]
    return bits[entropy_bits:] == expected


def _bip39_error() -> MnemonicError:
    return MnemonicError(
        "This looks like a BIP-39 recovery phrase from a Bitcoin/Ethereum-style wallet, "
        "not a TON wallet phrase.",
        hint="Use the 24-word phrase of a TON wallet (Tonkeeper, MyTonWallet, TON Wallet…).",
    )


def derive_keypair(mnemonic: Mnemonic) -> KeyPair:
    """The wallet key pair of ``mnemonic`` (PBKDF2, ~70 ms: call it off the event loop)."""
    public_key, secret_key = mnemonic_to_private_key(list(mnemonic.words))
    return KeyPair(bytes(public_key), bytes(secret_key))
