"""UI test fixtures: a real WalletService over an in-memory SimulatedChain and its view-model."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from PySide6.QtWidgets import QApplication, QDialog, QWidget

from app.core.money import Nanoton
from app.core.observable import Observable
from app.core.paths import AppPaths
from app.core.settings import Settings, WalletSettings
from app.ui.theme import style_sheet
from app.ui.viewmodels.wallet import WalletViewModel
from app.wallet.chain import ChainBackend
from app.wallet.keyring_cache import KeyringCache
from app.wallet.service import WalletService
from app.wallet.simulated_chain import SimulatedChain
from tests.conftest import MemoryKeyring
from tests.polling import eventually
from tests.service_builder import FAST_KDF
from tests.unit.wallet.conftest import TEST_VECTOR_PHRASE

T = TypeVar("T")

# Set COCOON_UI_SHOTS=/tmp/ui-shots to save PNGs of the wallet page and dialogs for review.
SHOTS_ENV = "COCOON_UI_SHOTS"


def new_wallet_service(
    tmp_path: Path,
    chain: ChainBackend,
    *,
    keyring: KeyringCache | None = None,
    settings: WalletSettings | None = None,
) -> WalletService:
    """A devnet WalletService under ``tmp_path`` over ``chain``: fast KDF, no refresh timer."""
    return WalletService(
        AppPaths(tmp_path / "data").ensure(),
        "devnet",
        chain,
        settings=settings,
        keyring=keyring,
        kdf=FAST_KDF,
        refresh_interval_s=None,
    )


@contextlib.asynccontextmanager
async def wallet_over(
    tmp_path: Path,
    chain: SimulatedChain,
    password: str,
    *,
    keyring: KeyringCache | None = None,
    funds: int = 0,
) -> AsyncIterator[WalletViewModel]:
    """The test-vector wallet imported under ``password`` into a service over ``chain`` (with
    ``funds`` minted), and its view-model; both are closed on the way out."""
    service = new_wallet_service(tmp_path, chain, keyring=keyring)
    await service.start()
    try:
        summary = await service.import_(TEST_VECTOR_PHRASE, password)
        if funds:
            await chain.mint(summary.raw_address, funds)
        vm = WalletViewModel(service, keyring=keyring)
        try:
            yield vm
        finally:
            await vm.aclose()
    finally:
        await service.aclose()


@pytest.fixture
def sim_chain() -> SimulatedChain:
    return SimulatedChain()


@pytest.fixture
def keyring_cache() -> KeyringCache:
    """A fresh in-memory keyring per test, so a key remembered by one test is not in another."""
    return KeyringCache(backend=MemoryKeyring())


@pytest.fixture
async def wallet_service(
    tmp_path: Path, sim_chain: SimulatedChain, keyring_cache: KeyringCache
) -> AsyncIterator[WalletService]:
    service = new_wallet_service(
        tmp_path,
        sim_chain,
        keyring=keyring_cache,
        settings=WalletSettings(large_first_send_nanoton=5 * 10**9),
    )
    await service.start()
    yield service
    await service.aclose()


@pytest.fixture
def wallet_settings() -> Observable[Settings]:
    return Observable(Settings())


@pytest.fixture
async def wallet_vm(
    wallet_service: WalletService,
    sim_chain: SimulatedChain,
    wallet_settings: Observable[Settings],
    keyring_cache: KeyringCache,
) -> AsyncIterator[WalletViewModel]:
    async def faucet(address: str, amount: Nanoton) -> object:
        return await sim_chain.mint(address, amount, comment="devnet faucet")

    vm = WalletViewModel(
        wallet_service, keyring=keyring_cache, settings=wallet_settings, faucet=faucet
    )
    yield vm
    await vm.aclose()


async def until(condition: Callable[[], T | None], *, limit_s: float = 10.0) -> T:
    """``tests.polling.eventually`` that also returns the truthy value ``condition()`` reached."""
    found: list[T] = []

    def check() -> bool:
        value = condition()
        if value:
            found.append(value)
        return bool(value)

    await eventually(check, limit_s=limit_s)
    return found[-1]


def shot(widget: QWidget, name: str) -> None:
    """Save a PNG of ``widget`` with the app's style sheet when COCOON_UI_SHOTS names a folder."""
    folder = os.environ.get(SHOTS_ENV)
    if not folder:
        return
    widget.setStyleSheet(style_sheet())
    Path(folder).mkdir(parents=True, exist_ok=True)
    if isinstance(widget, QDialog):
        # As on screen: shown, laid out (word-wrapped labels get their heights), then grabbed.
        widget.show()
        widget.adjustSize()
        QApplication.processEvents()
    assert widget.grab().save(str(Path(folder) / f"{name}.png"))
