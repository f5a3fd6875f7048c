"""The per-wallet encrypted vault file: the source of truth for a wallet's recovery phrase.

Layout (docs/wallet.md §4.1, §4.2): public metadata in clear; a random 32-byte data key encrypts
the secret (XSalsa20-Poly1305, ``nacl.secret.SecretBox``); the data key is wrapped by a key
derived from the password with Argon2id, whose parameters and salt are stored (versioned).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Final

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from app.core.atomic import write_private_atomic
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair, Mnemonic, MnemonicError, derive_keypair, parse_mnemonic
from app.wallet.vault_format import (
    FORMAT_VERSION,
    DataKey,
    KdfParams,
    VaultCorruptedError,
    VaultDocument,
    VaultError,
    VaultPublicInfo,
    WrongPasswordError,
    check_new_password,
    decode_document,
    encode_document,
    password_bytes,
)

__all__ = [
    "DEFAULT_KDF",
    "DataKey",
    "KdfParams",
    "VaultCorruptedError",
    "VaultError",
    "VaultPublicInfo",
    "WalletVault",
    "WrongPasswordError",
    "vault_path",
    "wallet_id_for",
]

DEFAULT_KDF: Final = KdfParams(
    opslimit=nacl.pwhash.argon2id.OPSLIMIT_MODERATE,
    memlimit=nacl.pwhash.argon2id.MEMLIMIT_MODERATE,
)
# Argon2 MODERATE takes ~0.5 s on a slow machine; a minute means something is badly wrong.
KDF_TIMEOUT_S: Final = 60.0
VAULT_SUFFIX: Final = ".vault.json"


def wallet_id_for(contract: WalletContract) -> str:
    """A stable, file-name-safe id: version, network and the start of the address hash."""
    network = "testnet" if contract.network.is_testnet else "mainnet"
    return f"{contract.version.value}-{network}-{contract.raw_address[2:18]}"


def vault_path(wallets_dir: Path, wallet_id: str) -> Path:
    if not wallet_id or "/" in wallet_id or "\\" in wallet_id or wallet_id.startswith("."):
        raise ValueError("invalid wallet id")
    return wallets_dir / f"{wallet_id}{VAULT_SUFFIX}"


class WalletVault:
    """One wallet's vault file. Loading it reads only public data; secrets need a password
    (or the data key cached in the OS keyring) and are decrypted only for the call that needs
    them."""

    def __init__(self, path: Path, document: VaultDocument) -> None:
        self.path = path
        self._document = document

    def __repr__(self) -> str:
        return f"<WalletVault {self.public.wallet_id} at {self.path}>"

    @property
    def public(self) -> VaultPublicInfo:
        return self._document.public

    @property
    def kdf(self) -> KdfParams:
        return self._document.kdf

    # -- creating and loading -------------------------------------------------------------

    @classmethod
    def create(
        cls,
        wallets_dir: Path,
        mnemonic: Mnemonic,
        password: str,
        *,
        version: WalletVersion,
        network: TonNetwork,
        kdf: KdfParams = DEFAULT_KDF,
    ) -> WalletVault:
        """Encrypt ``mnemonic`` into a new vault file; refuses to replace an existing file."""
        check_new_password(password)
        keys = derive_keypair(mnemonic)
        contract = WalletContract(version, network, keys.public_key)
        public = VaultPublicInfo(
            wallet_id=wallet_id_for(contract),
            address=contract.display_address,
            public_key=keys.public_key,
            wallet_version=version,
            network=network,
            created_at=int(time.time()),
        )
        document = _seal(public, mnemonic, password, DataKey.generate(), kdf)
        path = vault_path(wallets_dir, public.wallet_id)
        _write_new(path, document)
        return cls(path, document)

    @classmethod
    def load(cls, path: Path) -> WalletVault:
        """Read and check a vault file (no password needed; secrets stay encrypted)."""
        return cls(path, _read(path))

    # -- unlocking ----------------------------------------------------------------------

    def unlock(self, password: str) -> DataKey:
        """The data key, given the right password (Argon2id: blocking, ~0.5 s)."""
        return _unwrap(self._document, password)

    async def unlock_async(self, password: str) -> DataKey:
        """:meth:`unlock` in a worker thread, bounded by :data:`KDF_TIMEOUT_S`."""
        return await asyncio.wait_for(asyncio.to_thread(self.unlock, password), KDF_TIMEOUT_S)

    def mnemonic(self, key: DataKey) -> Mnemonic:
        """Decrypt the recovery phrase. Keep the result only as long as the call needs it."""
        return _open_secret(self._document, key)

    def keypair(self, key: DataKey) -> KeyPair:
        """The signing keys (PBKDF2, ~70 ms); checked against the public key in the file."""
        keys = derive_keypair(self.mnemonic(key))
        if keys.public_key != self.public.public_key:
            raise VaultCorruptedError(
                f"The vault {self.path.name} does not match its own public key.",
                hint="Restore the wallet from its recovery phrase or a backup.",
            )
        return keys

    async def keypair_async(self, key: DataKey) -> KeyPair:
        return await asyncio.wait_for(asyncio.to_thread(self.keypair, key), KDF_TIMEOUT_S)

    # -- changing -----------------------------------------------------------------------

    def change_password(
        self, old_password: str, new_password: str, *, kdf: KdfParams | None = None
    ) -> None:
        """Re-wrap the data key under ``new_password``; the encrypted phrase is untouched (and
        so a data key cached in the OS keyring keeps working)."""
        check_new_password(new_password)
        current = _read(self.path)  # never write over a file that no longer parses
        key = _unwrap(current, old_password)
        updated = _rewrap(current, key, new_password, kdf or current.kdf)
        write_private_atomic(self.path, encode_document(updated))
        self._document = updated

    async def change_password_async(
        self,
        old_password: str,
        new_password: str,
        *,
        kdf: KdfParams | None = None,
    ) -> None:
        await asyncio.wait_for(
            asyncio.to_thread(self.change_password, old_password, new_password, kdf=kdf),
            KDF_TIMEOUT_S,
        )

    # -- backups ------------------------------------------------------------------------

    def export_backup(
        self, key: DataKey, backup_password: str, *, kdf: KdfParams = DEFAULT_KDF
    ) -> bytes:
        """A self-contained encrypted copy under ``backup_password`` with a fresh data key (so
        neither the vault password nor a cached data key opens it)."""
        check_new_password(backup_password)
        mnemonic = self.mnemonic(key)
        return encode_document(
            _seal(self.public, mnemonic, backup_password, DataKey.generate(), kdf)
        )

    @classmethod
    def import_backup(
        cls,
        wallets_dir: Path,
        backup: bytes,
        backup_password: str,
        new_password: str,
        *,
        kdf: KdfParams = DEFAULT_KDF,
    ) -> WalletVault:
        """Restore a backup made by :meth:`export_backup` as a new vault under ``new_password``."""
        check_new_password(new_password)
        document = decode_document(backup, source="The backup file")
        mnemonic = _open_secret(document, _unwrap(document, backup_password))
        restored = _seal(document.public, mnemonic, new_password, DataKey.generate(), kdf)
        path = vault_path(wallets_dir, document.public.wallet_id)
        _write_new(path, restored)
        return cls(path, restored)


# -- the crypto, on documents ---------------------------------------------------------------


def _kek(password: str, salt: bytes, kdf: KdfParams) -> bytes:
    kek: bytes = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        password_bytes(password),
        salt,
        opslimit=kdf.opslimit,
        memlimit=kdf.memlimit,
    )
    return kek


def _seal(
    public: VaultPublicInfo, mnemonic: Mnemonic, password: str, key: DataKey, kdf: KdfParams
) -> VaultDocument:
    payload = json.dumps(
        {"mnemonic": mnemonic.phrase(), "public": public.to_json()}, sort_keys=True
    ).encode()
    document = VaultDocument(
        version=FORMAT_VERSION,
        public=public,
        kdf=kdf,
        salt=b"",
        wrapped_key=b"",
        secret=bytes(nacl.secret.SecretBox(key.raw).encrypt(payload)),
    )
    return _rewrap(document, key, password, kdf)


def _rewrap(document: VaultDocument, key: DataKey, password: str, kdf: KdfParams) -> VaultDocument:
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    wrapped = nacl.secret.SecretBox(_kek(password, salt, kdf)).encrypt(key.raw)
    return document.replace_wrapping(kdf=kdf, salt=salt, wrapped_key=bytes(wrapped))


def _unwrap(document: VaultDocument, password: str) -> DataKey:
    kek = _kek(password, document.salt, document.kdf)
    try:
        raw = nacl.secret.SecretBox(kek).decrypt(document.wrapped_key)
    except nacl.exceptions.CryptoError:
        raise WrongPasswordError(
            "Wrong password.", hint="Check the keyboard layout and Caps Lock."
        ) from None
    # decode_document checked the wrapped size, so this is exactly a 32-byte key.
    return DataKey(bytes(raw))


def _open_secret(document: VaultDocument, key: DataKey) -> Mnemonic:
    try:
        payload = nacl.secret.SecretBox(key.raw).decrypt(document.secret)
    except nacl.exceptions.CryptoError:
        raise VaultCorruptedError(
            "The wallet's encrypted data does not open with this key.",
            hint="If it was unlocked from the system keyring, unlock with the password instead.",
        ) from None
    return _mnemonic_from_payload(document, payload)


def _mnemonic_from_payload(document: VaultDocument, payload: bytes) -> Mnemonic:
    try:
        data: Any = json.loads(payload)
        mnemonic = parse_mnemonic(data["mnemonic"])
        same_public = data["public"] == document.public.to_json()
    except (ValueError, KeyError, TypeError, MnemonicError):
        raise VaultCorruptedError("The wallet's decrypted data is not readable.") from None
    if not same_public:
        raise VaultCorruptedError(
            "The wallet's public details were changed outside the app.",
            hint="Restore the wallet from its recovery phrase or a backup.",
        )
    return mnemonic


def _read(path: Path) -> VaultDocument:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise VaultError(f"No wallet vault at {path}.") from None
    except OSError as exc:
        raise VaultError(f"Cannot read the wallet vault {path}: {exc.strerror}.") from None
    return decode_document(data, source=f"The wallet vault {path.name}")


def _write_new(path: Path, document: VaultDocument) -> None:
    if path.exists():
        raise VaultError(
            f"A wallet vault already exists at {path}.",
            hint="This wallet is already set up; remove it first to replace it.",
        )
    write_private_atomic(path, encode_document(document))
