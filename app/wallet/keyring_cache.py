"""The optional "unlock without password on this computer" cache of vault data keys (OS keyring).

The vault file stays the source of truth; the keyring only remembers a data key. Every keyring
problem (no backend, locked, D-Bus missing, a hung call) degrades to password-only with a
message — never an exception to the caller and never a hang: each call runs in a worker thread
with a timeout, and while one is still stuck no other is started.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

import keyring
from keyring.backend import KeyringBackend

from app import APP_NAME
from app.core.observable import Observable
from app.wallet.vault_format import DataKey

_log = logging.getLogger(__name__)

KEYRING_TIMEOUT_S: Final = 5.0
_USER_PREFIX: Final = "vault:"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KeyringStatus:
    """Whether the keyring worked the last time it was used; ``message`` says why not."""

    available: bool | None  # None: not used yet
    message: str = ""


class KeyringUnavailableError(Exception):
    """Internal: the keyring call failed or did not answer (the caller gets a degraded result)."""


class KeyringCache:
    """Stores, loads and forgets vault data keys under ``<app>`` / ``vault:<wallet id>``."""

    def __init__(
        self,
        *,
        service: str = APP_NAME,
        backend: KeyringBackend | None = None,
        timeout: float = KEYRING_TIMEOUT_S,
    ) -> None:
        self._service = service
        self._backend = backend
        self._timeout = timeout
        self._busy = threading.Lock()
        self.status: Observable[KeyringStatus] = Observable(KeyringStatus(available=None))

    async def save(self, wallet_id: str, key: DataKey) -> bool:
        """Remember ``key``; False (and a status message) when the keyring cannot."""
        text = key.to_text()
        ok, _ = await self._call(lambda kr: kr.set_password(self._service, _user(wallet_id), text))
        return ok

    async def load(self, wallet_id: str) -> DataKey | None:
        """The remembered key, or None when there is none or the keyring cannot answer."""
        _, stored = await self._call(lambda kr: kr.get_password(self._service, _user(wallet_id)))
        if stored is None:
            return None
        try:
            return DataKey.from_text(stored)
        except ValueError:
            _log.info("ignoring an unreadable keyring entry for wallet %s", wallet_id)
            return None

    async def forget(self, wallet_id: str) -> bool:
        """Remove the remembered key; True when it is gone (or was never there)."""
        ok, _ = await self._call(lambda kr: _delete(kr, self._service, _user(wallet_id)))
        return ok

    async def _call(self, action: Callable[[KeyringBackend], T]) -> tuple[bool, T | None]:
        try:
            result = await asyncio.wait_for(
                asyncio.to_thread(self._run_alone, action), self._timeout
            )
        except TimeoutError:
            self._degrade("The system keyring did not answer in time; use your password.")
            return False, None
        except KeyringUnavailableError as exc:
            self._degrade(str(exc))
            return False, None
        self.status.set(KeyringStatus(available=True))
        return True, result

    def _run_alone(self, action: Callable[[KeyringBackend], T]) -> T:
        # The lock is taken in the worker thread and held for the whole backend call, so a call
        # that timed out but is still stuck in its thread makes later calls fail fast instead
        # of piling up more stuck threads behind it.
        if not self._busy.acquire(blocking=False):
            raise KeyringUnavailableError(
                "The system keyring is not responding; use your password."
            )
        try:
            backend = self._backend if self._backend is not None else keyring.get_keyring()
            return action(backend)
        except Exception as exc:
            # Never log the exception text: some backends echo what they were asked to store.
            raise KeyringUnavailableError(
                f"The system keyring is not available ({type(exc).__name__}); use your password."
            ) from None
        finally:
            self._busy.release()

    def _degrade(self, message: str) -> None:
        _log.info("keyring unavailable: %s", message)
        self.status.set(KeyringStatus(available=False, message=message))


def _user(wallet_id: str) -> str:
    return f"{_USER_PREFIX}{wallet_id}"


def _delete(backend: KeyringBackend, service: str, user: str) -> bool:
    if backend.get_password(service, user) is None:
        return True
    backend.delete_password(service, user)
    return True
