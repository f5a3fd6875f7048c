"""The OS-keyring data-key cache: round trips, and degrading (never hanging) when it fails."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked, NoKeyringError

from app.wallet.contracts import TonNetwork, WalletVersion
from app.wallet.keyring_cache import KeyringCache, KeyringStatus
from app.wallet.mnemonic import Mnemonic
from app.wallet.vault import DataKey, KdfParams, WalletVault


class FailingKeyring(KeyringBackend):
    """Raises what a headless Linux box, a locked keychain or a missing D-Bus raise."""

    priority = 1

    def __init__(self, error: Exception) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.error = error

    def get_password(self, service: str, username: str) -> str | None:
        raise self.error

    def set_password(self, service: str, username: str, password: str) -> None:
        raise self.error

    def delete_password(self, service: str, username: str) -> None:
        raise self.error


class HangingKeyring(KeyringBackend):
    """Blocks every call until released, like a Secret Service waiting on an unlock prompt."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.release = threading.Event()
        self.entered = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.entered.set()
        self.release.wait()
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self.get_password(service, username)

    def delete_password(self, service: str, username: str) -> None:
        self.get_password(service, username)


@pytest.fixture
def cache() -> KeyringCache:
    return KeyringCache(service="cocoon-provider-tests")


async def test_save_load_forget_round_trip(cache: KeyringCache) -> None:
    key = DataKey.generate()
    assert await cache.save("w1", key)
    assert await cache.load("w1") == key
    assert await cache.load("other") is None
    assert await cache.forget("w1")
    assert await cache.load("w1") is None
    assert await cache.forget("w1")  # already gone is fine
    assert cache.status.value == KeyringStatus(available=True)


async def test_only_the_data_key_is_stored_under_the_app_service(cache: KeyringCache) -> None:
    key = DataKey.generate()
    await cache.save("w2", key)
    assert keyring.get_password("cocoon-provider-tests", "vault:w2") == key.to_text()
    await cache.forget("w2")


async def test_unreadable_entry_is_ignored(cache: KeyringCache) -> None:
    keyring.set_password("cocoon-provider-tests", "vault:w3", "garbage!")
    assert await cache.load("w3") is None
    await cache.forget("w3")


@pytest.mark.parametrize(
    "error",
    [
        NoKeyringError("No recommended backend was available."),
        KeyringLocked("locked"),
        RuntimeError("Environment variable DBUS_SESSION_BUS_ADDRESS is unset"),
        OSError("D-Bus connection refused"),
    ],
    ids=["no-backend", "locked", "no-dbus", "os-error"],
)
async def test_every_keyring_failure_degrades_to_password_only(error: Exception) -> None:
    cache = KeyringCache(backend=FailingKeyring(error))
    key = DataKey.generate()
    assert not await cache.save("w", key)
    assert await cache.load("w") is None
    assert not await cache.forget("w")
    status = cache.status.value
    assert status.available is False
    assert type(error).__name__ in status.message
    assert "use your password" in status.message
    assert key.to_text() not in status.message


@pytest.fixture
def hanging() -> Iterator[HangingKeyring]:
    backend = HangingKeyring()
    yield backend
    backend.release.set()


async def test_a_hanging_keyring_times_out_and_later_calls_fail_fast(
    hanging: HangingKeyring,
) -> None:
    cache = KeyringCache(backend=hanging, timeout=0.05)
    assert await cache.load("w") is None
    assert hanging.entered.is_set()
    assert "did not answer in time" in cache.status.value.message
    # The first call is still stuck in its thread: the next one must not queue behind it.
    cache._timeout = 30.0
    assert not await cache.save("w", DataKey.generate())
    assert "not responding" in cache.status.value.message
    hanging.release.set()


async def test_keyring_recovers_after_the_stuck_call_ends(hanging: HangingKeyring) -> None:
    cache = KeyringCache(backend=hanging, timeout=0.05)
    assert await cache.load("w") is None
    hanging.release.set()
    cache._timeout = 30.0
    # Once the stuck thread returns, the lock is free again and calls succeed.
    for _ in range(1000):
        if await cache.forget("w"):
            break
        await asyncio.sleep(0.01)
    assert cache.status.value.available is True


async def test_vault_unlocks_from_the_cached_data_key(
    tmp_path: Path, vector_mnemonic: Mnemonic, fast_kdf: KdfParams, cache: KeyringCache
) -> None:
    vault = WalletVault.create(
        tmp_path,
        vector_mnemonic,
        "a long password",
        version=WalletVersion.V5R1,
        network=TonNetwork.TESTNET,
        kdf=fast_kdf,
    )
    assert await cache.save(vault.public.wallet_id, await vault.unlock_async("a long password"))
    vault.change_password("a long password", "another long one")
    cached = await cache.load(vault.public.wallet_id)
    assert cached is not None
    assert WalletVault.load(vault.path).mnemonic(cached) == vector_mnemonic
    await cache.forget(vault.public.wallet_id)
