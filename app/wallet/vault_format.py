"""The wallet vault's file format: versioned JSON, its typed parts and strict decoding.

Decoding checks every field; any damage becomes :class:`VaultCorruptedError` and the file is
left as it is.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import unicodedata
from dataclasses import dataclass, replace
from typing import Any, Final

import nacl.pwhash
import nacl.secret
import nacl.utils

from app.core.errors import UserFacingError
from app.wallet.contracts import TonNetwork, WalletVersion

FORMAT_NAME: Final = "cocoon-provider-wallet-vault"
FORMAT_VERSION: Final = 1
KDF_ALGORITHM: Final = "argon2id13"
MIN_PASSWORD_CHARS: Final = 8
_SALT_BYTES: Final = nacl.pwhash.argon2id.SALTBYTES
_BOX_OVERHEAD: Final = nacl.secret.SecretBox.NONCE_SIZE + nacl.secret.SecretBox.MACBYTES
_WRAPPED_KEY_BYTES: Final = _BOX_OVERHEAD + nacl.secret.SecretBox.KEY_SIZE


class VaultError(UserFacingError):
    """A wallet vault problem the user has to act on."""


class WrongPasswordError(VaultError):
    """The password does not open the vault (nothing was changed)."""


class VaultCorruptedError(VaultError):
    """The vault file is damaged or was edited; the app never writes over such a file."""


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id cost parameters, stored in each vault so they can be raised later."""

    opslimit: int
    memlimit: int

    def __post_init__(self) -> None:
        argon = nacl.pwhash.argon2id
        if not argon.OPSLIMIT_MIN <= self.opslimit <= argon.OPSLIMIT_MAX:
            raise ValueError("Argon2id opslimit out of range")
        if not argon.MEMLIMIT_MIN <= self.memlimit <= argon.MEMLIMIT_MAX:
            raise ValueError("Argon2id memlimit out of range")


class DataKey:
    """The random 32-byte key that encrypts a vault's secret; prints as a placeholder."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) != nacl.secret.SecretBox.KEY_SIZE:
            raise ValueError("a data key is 32 bytes")
        self._raw = raw

    @classmethod
    def generate(cls) -> DataKey:
        return cls(nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE))

    @property
    def raw(self) -> bytes:
        return self._raw

    def to_text(self) -> str:
        """Base64, for the OS keyring."""
        return base64.b64encode(self._raw).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> DataKey:
        try:
            return cls(base64.b64decode(text.encode("ascii"), validate=True))
        except (ValueError, binascii.Error):
            raise ValueError("not a stored data key") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DataKey):
            return NotImplemented
        return secrets.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        raise TypeError("DataKey is not hashable")

    def __repr__(self) -> str:
        return "<DataKey hidden>"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("DataKey cannot be pickled")


@dataclass(frozen=True, slots=True)
class VaultPublicInfo:
    """What anyone may read from a vault: enough to show the wallet and its balance."""

    wallet_id: str
    address: str
    public_key: bytes
    wallet_version: WalletVersion
    network: TonNetwork
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "wallet_id": self.wallet_id,
            "address": self.address,
            "public_key": self.public_key.hex(),
            "wallet_version": self.wallet_version.value,
            "network": self.network.name.lower(),
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, data: Any) -> VaultPublicInfo:
        public_key = bytes.fromhex(_get(data, "public_key", str))
        if len(public_key) != 32:
            raise ValueError("public key")
        return cls(
            wallet_id=_get(data, "wallet_id", str),
            address=_get(data, "address", str),
            public_key=public_key,
            wallet_version=WalletVersion(_get(data, "wallet_version", str)),
            network=TonNetwork[_get(data, "network", str).upper()],
            created_at=_get(data, "created_at", int),
        )


@dataclass(frozen=True, slots=True)
class VaultDocument:
    """A parsed vault file (still encrypted)."""

    version: int
    public: VaultPublicInfo
    kdf: KdfParams
    salt: bytes
    wrapped_key: bytes
    secret: bytes

    def replace_wrapping(self, *, kdf: KdfParams, salt: bytes, wrapped_key: bytes) -> VaultDocument:
        return replace(self, kdf=kdf, salt=salt, wrapped_key=wrapped_key)


def encode_document(document: VaultDocument) -> bytes:
    data = {
        "format": FORMAT_NAME,
        "version": document.version,
        "public": document.public.to_json(),
        "kdf": {
            "algorithm": KDF_ALGORITHM,
            "opslimit": document.kdf.opslimit,
            "memlimit": document.kdf.memlimit,
            "salt": _b64(document.salt),
        },
        "wrapped_key": _b64(document.wrapped_key),
        "secret": _b64(document.secret),
    }
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def decode_document(data: bytes, *, source: str) -> VaultDocument:
    """Parse and check every field of a vault file; any damage is a :class:`VaultCorruptedError`."""
    try:
        root = json.loads(data)
        if _get(root, "format", str) != FORMAT_NAME:
            raise ValueError("format")
        version = _get(root, "version", int)
        if version > FORMAT_VERSION:
            raise VaultError(
                f"{source} was written by a newer version of the app.",
                hint="Update the app to open this wallet.",
            )
        kdf = _get(root, "kdf", dict)
        if version != FORMAT_VERSION or _get(kdf, "algorithm", str) != KDF_ALGORITHM:
            raise ValueError("version")
        document = VaultDocument(
            version=version,
            public=VaultPublicInfo.from_json(_get(root, "public", dict)),
            kdf=KdfParams(_get(kdf, "opslimit", int), _get(kdf, "memlimit", int)),
            salt=_unb64(_get(kdf, "salt", str)),
            wrapped_key=_unb64(_get(root, "wrapped_key", str)),
            secret=_unb64(_get(root, "secret", str)),
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise VaultCorruptedError(
            f"{source} is damaged and cannot be read.",
            hint="It was left as it is. Restore the wallet from a backup or its recovery phrase.",
        ) from None
    if (
        len(document.salt) != _SALT_BYTES
        or len(document.wrapped_key) != _WRAPPED_KEY_BYTES
        or len(document.secret) <= _BOX_OVERHEAD
    ):
        raise VaultCorruptedError(
            f"{source} is damaged (an encrypted field has the wrong size).",
            hint="It was left as it is. Restore the wallet from a backup or its recovery phrase.",
        )
    return document


def password_bytes(password: str) -> bytes:
    # NFC so that the same password typed on different systems gives the same bytes.
    return unicodedata.normalize("NFC", password).encode("utf-8")


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise VaultError(
            f"Choose a password of at least {MIN_PASSWORD_CHARS} characters.",
            hint="It protects your wallet on this computer.",
        )


def _get(mapping: Any, key: str, kind: type[Any]) -> Any:
    if not isinstance(mapping, dict):
        raise TypeError("not an object")
    value = mapping[key]
    # bool is an int subclass; a vault never stores booleans.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(key)
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
