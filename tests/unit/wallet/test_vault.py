"""The encrypted vault: round trips, wrong passwords, damaged files (never overwritten), backups."""

from __future__ import annotations

import base64
import json
import os
import pickle
import stat
from pathlib import Path
from typing import Any

import nacl.pwhash
import nacl.secret
import pytest

from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair, Mnemonic, generate_mnemonic
from app.wallet.vault import (
    DataKey,
    KdfParams,
    VaultCorruptedError,
    VaultError,
    VaultPublicInfo,
    WalletVault,
    WrongPasswordError,
    _seal,
    vault_path,
    wallet_id_for,
)
from app.wallet.vault_format import decode_document, encode_document
from tests.unit.wallet.conftest import TEST_VECTOR_PHRASE, TEST_VECTOR_PUBLIC_KEY

PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple-9-staple-9"


@pytest.fixture
def vault(tmp_path: Path, vector_mnemonic: Mnemonic, fast_kdf: KdfParams) -> WalletVault:
    return WalletVault.create(
        tmp_path,
        vector_mnemonic,
        PASSWORD,
        version=WalletVersion.V5R1,
        network=TonNetwork.MAINNET,
        kdf=fast_kdf,
    )


def test_create_writes_a_private_file_with_public_metadata_in_clear(
    vault: WalletVault, tmp_path: Path, vector_keys: KeyPair
) -> None:
    contract = WalletContract(WalletVersion.V5R1, TonNetwork.MAINNET, vector_keys.public_key)
    assert vault.path == tmp_path / f"{wallet_id_for(contract)}.vault.json"
    assert stat.S_IMODE(os.stat(vault.path).st_mode) == 0o600
    data = json.loads(vault.path.read_bytes())
    assert data["public"]["address"] == contract.display_address
    assert data["public"]["public_key"] == TEST_VECTOR_PUBLIC_KEY
    assert data["public"]["wallet_version"] == "v5r1"
    assert data["public"]["network"] == "mainnet"
    assert data["kdf"]["algorithm"] == "argon2id13"
    text = vault.path.read_text()
    for word in set(TEST_VECTOR_PHRASE.split()):
        assert f'"{word}' not in text
        assert f" {word} " not in text
    loaded = WalletVault.load(vault.path)
    assert loaded.public == vault.public
    assert loaded.kdf == vault.kdf
    assert vault.public.wallet_id in repr(vault)


def test_unlock_decrypts_the_phrase_and_keys(
    vault: WalletVault, vector_mnemonic: Mnemonic, vector_keys: KeyPair
) -> None:
    key = WalletVault.load(vault.path).unlock(PASSWORD)
    assert vault.mnemonic(key) == vector_mnemonic
    assert vault.keypair(key).public_key == vector_keys.public_key


async def test_async_unlock_and_keypair_run_off_the_loop(
    vault: WalletVault, vector_keys: KeyPair
) -> None:
    key = await vault.unlock_async(PASSWORD)
    keys = await vault.keypair_async(key)
    assert keys.public_key == vector_keys.public_key


def test_wrong_password_is_a_clear_error_and_changes_nothing(vault: WalletVault) -> None:
    before = vault.path.read_bytes()
    with pytest.raises(WrongPasswordError, match="Wrong password"):
        vault.unlock("not the password")
    with pytest.raises(WrongPasswordError):
        vault.change_password("not the password", NEW_PASSWORD)
    assert vault.path.read_bytes() == before


def test_secrets_never_show_in_reprs_or_errors(vault: WalletVault) -> None:
    key = vault.unlock(PASSWORD)
    assert repr(key) == str(key) == "<DataKey hidden>"
    assert key.to_text() not in repr(vault)
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        hash(key)
    with pytest.raises(WrongPasswordError) as info:
        vault.unlock("hunter2-hunter2")
    assert "hunter2" not in info.value.describe()


def test_create_refuses_to_replace_an_existing_vault(
    vault: WalletVault, vector_mnemonic: Mnemonic, fast_kdf: KdfParams
) -> None:
    before = vault.path.read_bytes()
    with pytest.raises(VaultError, match="already exists"):
        WalletVault.create(
            vault.path.parent,
            vector_mnemonic,
            NEW_PASSWORD,
            version=WalletVersion.V5R1,
            network=TonNetwork.MAINNET,
            kdf=fast_kdf,
        )
    assert vault.path.read_bytes() == before


def test_short_password_is_refused(tmp_path: Path, fast_kdf: KdfParams) -> None:
    with pytest.raises(VaultError, match="at least 8 characters"):
        WalletVault.create(
            tmp_path,
            generate_mnemonic(),
            "short",
            version=WalletVersion.V4R2,
            network=TonNetwork.TESTNET,
            kdf=fast_kdf,
        )
    assert list(tmp_path.iterdir()) == []


def test_change_password_rewraps_and_keeps_the_data_key(
    vault: WalletVault, fast_kdf: KdfParams
) -> None:
    key = vault.unlock(PASSWORD)
    secret_before = json.loads(vault.path.read_bytes())["secret"]
    vault.change_password(PASSWORD, NEW_PASSWORD)
    reloaded = WalletVault.load(vault.path)
    with pytest.raises(WrongPasswordError):
        reloaded.unlock(PASSWORD)
    assert reloaded.unlock(NEW_PASSWORD) == key
    assert json.loads(vault.path.read_bytes())["secret"] == secret_before
    assert stat.S_IMODE(os.stat(vault.path).st_mode) == 0o600
    stronger = KdfParams(fast_kdf.opslimit + 1, fast_kdf.memlimit)
    vault.change_password(NEW_PASSWORD, PASSWORD, kdf=stronger)
    assert WalletVault.load(vault.path).kdf == stronger


async def test_change_password_async(vault: WalletVault) -> None:
    await vault.change_password_async(PASSWORD, NEW_PASSWORD)
    assert WalletVault.load(vault.path).unlock(NEW_PASSWORD) == vault.unlock(NEW_PASSWORD)


def test_change_password_to_a_short_one_is_refused(vault: WalletVault) -> None:
    before = vault.path.read_bytes()
    with pytest.raises(VaultError, match="at least 8"):
        vault.change_password(PASSWORD, "1234")
    assert vault.path.read_bytes() == before


def _truncations(data: bytes) -> list[bytes]:
    return [b"", data[:1], data[: len(data) // 2], data[:-2]]


def test_truncated_vault_file_is_a_clear_error_and_is_never_overwritten(
    vault: WalletVault,
) -> None:
    good = vault.path.read_bytes()
    for damaged in _truncations(good):
        vault.path.write_bytes(damaged)
        with pytest.raises(VaultCorruptedError, match="damaged"):
            WalletVault.load(vault.path)
        # The in-memory vault still works, but writing goes through a fresh read of the file.
        with pytest.raises(VaultCorruptedError):
            vault.change_password(PASSWORD, NEW_PASSWORD)
        assert vault.path.read_bytes() == damaged


def _edit(data: bytes, change: Any) -> bytes:
    doc = json.loads(data)
    change(doc)
    return json.dumps(doc).encode()


def _set(path: list[str], value: object) -> Any:
    def change(doc: dict[str, Any]) -> None:
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value

    return change


def _delete(key: str) -> Any:
    return lambda doc: doc.pop(key)


@pytest.mark.parametrize(
    "change",
    [
        _set(["format"], "something-else"),
        _set(["version"], 0),
        _set(["version"], True),
        _set(["version"], "1"),
        _set(["kdf", "algorithm"], "scrypt"),
        _set(["kdf", "opslimit"], 0),
        _set(["kdf", "memlimit"], 1),
        _set(["kdf", "salt"], "!!!not base64!!!"),
        _set(["kdf", "salt"], "AAAA"),
        _set(["wrapped_key"], "AAAA"),
        _set(["secret"], "AAAA"),
        _set(["public", "public_key"], "00" * 31),
        _set(["public", "public_key"], "zz"),
        _set(["public", "wallet_version"], "v9"),
        _set(["public", "network"], "moon"),
        _set(["public"], []),
        _set(["kdf"], "argon2"),
        _delete("secret"),
        _delete("kdf"),
        lambda doc: doc.clear(),
    ],
    ids=[
        "format",
        "version-0",
        "version-bool",
        "version-str",
        "kdf-alg",
        "opslimit",
        "memlimit",
        "salt-b64",
        "salt-size",
        "wrapped-size",
        "secret-size",
        "pubkey-size",
        "pubkey-hex",
        "wallet-version",
        "network",
        "public-type",
        "kdf-type",
        "no-secret",
        "no-kdf",
        "empty",
    ],
)
def test_damaged_fields_are_reported_and_the_file_kept(vault: WalletVault, change: Any) -> None:
    damaged = _edit(vault.path.read_bytes(), change)
    vault.path.write_bytes(damaged)
    with pytest.raises(VaultCorruptedError, match="damaged"):
        WalletVault.load(vault.path)
    assert vault.path.read_bytes() == damaged


def test_non_object_json_is_damaged(vault: WalletVault) -> None:
    vault.path.write_bytes(b"[1, 2, 3]")
    with pytest.raises(VaultCorruptedError):
        WalletVault.load(vault.path)


def test_vault_from_a_newer_app_is_refused_without_calling_it_damaged(
    vault: WalletVault,
) -> None:
    vault.path.write_bytes(_edit(vault.path.read_bytes(), _set(["version"], 2)))
    with pytest.raises(VaultError, match="newer version") as info:
        WalletVault.load(vault.path)
    assert not isinstance(info.value, VaultCorruptedError)


def test_flipped_ciphertext_is_detected(vault: WalletVault) -> None:
    doc = json.loads(vault.path.read_bytes())
    secret = bytearray(base64.b64decode(doc["secret"]))
    secret[-1] ^= 1
    doc["secret"] = base64.b64encode(bytes(secret)).decode()
    vault.path.write_text(json.dumps(doc))
    loaded = WalletVault.load(vault.path)
    key = loaded.unlock(PASSWORD)
    with pytest.raises(VaultCorruptedError, match="does not open"):
        loaded.mnemonic(key)


def test_public_details_edited_outside_the_app_are_detected(vault: WalletVault) -> None:
    forged = "UQAQl0at_KHSjg0RZmXijqRpUQ-yegqzCLgMYzUQUOFEPrpz"
    vault.path.write_bytes(_edit(vault.path.read_bytes(), _set(["public", "address"], forged)))
    loaded = WalletVault.load(vault.path)
    assert loaded.public.address == forged
    with pytest.raises(VaultCorruptedError, match="changed outside the app"):
        loaded.mnemonic(loaded.unlock(PASSWORD))


def test_unreadable_payload_is_damage(vault: WalletVault, fast_kdf: KdfParams) -> None:
    key = vault.unlock(PASSWORD)
    doc = json.loads(vault.path.read_bytes())
    box = nacl.secret.SecretBox(key.raw)
    doc["secret"] = base64.b64encode(bytes(box.encrypt(b"not json"))).decode()
    vault.path.write_text(json.dumps(doc))
    with pytest.raises(VaultCorruptedError, match="not readable"):
        WalletVault.load(vault.path).mnemonic(key)


def test_keypair_checks_the_public_key(
    tmp_path: Path, vault: WalletVault, fast_kdf: KdfParams
) -> None:
    other = generate_mnemonic()
    key = DataKey.generate()
    document = _seal(vault.public, other, PASSWORD, key, fast_kdf)
    path = tmp_path / "mismatch.vault.json"
    path.write_bytes(encode_document(document))
    with pytest.raises(VaultCorruptedError, match="does not match its own public key"):
        WalletVault.load(path).keypair(key)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="No wallet vault"):
        WalletVault.load(tmp_path / "nope.vault.json")
    (tmp_path / "dir.vault.json").mkdir()
    with pytest.raises(VaultError, match="Cannot read"):
        WalletVault.load(tmp_path / "dir.vault.json")


def test_backup_round_trip_under_its_own_password(
    vault: WalletVault, tmp_path: Path, vector_mnemonic: Mnemonic, fast_kdf: KdfParams
) -> None:
    key = vault.unlock(PASSWORD)
    backup = vault.export_backup(key, "backup-password", kdf=fast_kdf)
    assert b"decorate" not in backup
    with pytest.raises(WrongPasswordError):
        WalletVault.import_backup(tmp_path / "b", backup, PASSWORD, NEW_PASSWORD, kdf=fast_kdf)
    backup_doc = decode_document(backup, source="backup")
    with pytest.raises(VaultCorruptedError):  # the vault's cached data key does not open it
        WalletVault(tmp_path / "x", backup_doc).mnemonic(key)
    restored = WalletVault.import_backup(
        tmp_path / "restored", backup, "backup-password", NEW_PASSWORD, kdf=fast_kdf
    )
    assert restored.public == vault.public
    assert restored.mnemonic(restored.unlock(NEW_PASSWORD)) == vector_mnemonic
    assert stat.S_IMODE(os.stat(restored.path).st_mode) == 0o600


def test_backup_errors(vault: WalletVault, tmp_path: Path, fast_kdf: KdfParams) -> None:
    key = vault.unlock(PASSWORD)
    with pytest.raises(VaultError, match="at least 8"):
        vault.export_backup(key, "short", kdf=fast_kdf)
    backup = vault.export_backup(key, "backup-password", kdf=fast_kdf)
    with pytest.raises(VaultCorruptedError, match="The backup file is damaged"):
        WalletVault.import_backup(tmp_path, backup[:100], "backup-password", NEW_PASSWORD)
    before = vault.path.read_bytes()
    with pytest.raises(VaultError, match="already exists"):
        WalletVault.import_backup(
            vault.path.parent, backup, "backup-password", NEW_PASSWORD, kdf=fast_kdf
        )
    assert vault.path.read_bytes() == before


def test_vault_path_refuses_unsafe_ids(tmp_path: Path) -> None:
    assert vault_path(tmp_path, "v5r1-mainnet-abc") == tmp_path / "v5r1-mainnet-abc.vault.json"
    for bad in ("", "../x", "a/b", "a\\b", ".hidden"):
        with pytest.raises(ValueError, match="invalid wallet id"):
            vault_path(tmp_path, bad)


def test_kdf_params_and_data_keys_are_checked() -> None:
    argon = nacl.pwhash.argon2id
    with pytest.raises(ValueError, match="opslimit"):
        KdfParams(argon.OPSLIMIT_MIN - 1, argon.MEMLIMIT_MIN)
    with pytest.raises(ValueError, match="memlimit"):
        KdfParams(argon.OPSLIMIT_MIN, argon.MEMLIMIT_MAX + 1)
    with pytest.raises(ValueError, match="32 bytes"):
        DataKey(b"\0" * 31)
    key = DataKey.generate()
    assert DataKey.from_text(key.to_text()) == key
    assert key != DataKey.generate()
    assert key != key.raw
    for bad in ("not base64!", "AAAA", "é"):
        with pytest.raises(ValueError, match="not a stored data key"):
            DataKey.from_text(bad)


def test_public_info_round_trips(vault: WalletVault) -> None:
    assert VaultPublicInfo.from_json(vault.public.to_json()) == vault.public
