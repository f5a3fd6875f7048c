"""Which ``ChainBackend`` a network uses: the persisted local chain for devnet, liteservers else."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from app.core.errors import UserFacingError
from app.core.money import Nanoton
from app.core.observable import Observable
from app.core.paths import AppPaths
from app.wallet.chain import AccountState, ChainBackend, ChainOffline, ChainTransaction
from app.wallet.global_config import choose_config
from app.wallet.lite_backend import LiteBackend
from app.wallet.simulated_chain import SimulatedChain

DEVNET_CHAIN_FILE: Final = "chain.sqlite3"
_NO_NETWORK: Final = "This command works without the network."


def devnet_chain_path(paths: AppPaths) -> Path:
    return paths.devnet_dir / DEVNET_CHAIN_FILE


def open_chain(network: str, paths: AppPaths, *, ton_config_file: str = "") -> ChainBackend:
    """A not yet started backend for ``network`` (``devnet``, ``testnet`` or ``mainnet``); the
    live ones use the user's ``ton_config_file``, a fresh fetched copy or the shipped config."""
    if network == "devnet":
        return SimulatedChain(devnet_chain_path(paths))
    if network in ("testnet", "mainnet"):
        return LiteBackend(lambda: choose_config(network, paths, ton_config_file).config)
    raise UserFacingError(
        f"The wallet does not support the '{network}' network.",
        hint="Use devnet, testnet or mainnet.",
    )


class NoNetwork:
    """A ``ChainBackend`` for work that must not touch any network (offline signing, vault
    commands): never online, every request raises ``ChainOffline``."""

    def __init__(self) -> None:
        self._online = Observable(False)

    @property
    def online(self) -> Observable[bool]:
        return self._online

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def get_account_state(self, address: str) -> AccountState:
        raise ChainOffline(_NO_NETWORK)

    async def get_seqno(self, address: str) -> int:
        raise ChainOffline(_NO_NETWORK)

    async def get_server_time(self) -> int:
        raise ChainOffline(_NO_NETWORK)

    async def send_boc(self, boc: bytes) -> None:
        raise ChainOffline(_NO_NETWORK)

    async def get_transactions(
        self,
        address: str,
        limit: int,
        from_lt: int | None = None,
        from_hash: bytes | None = None,
    ) -> list[ChainTransaction]:
        raise ChainOffline(_NO_NETWORK)

    async def run_get_method(self, address: str, method: str, stack: list[Any]) -> list[Any]:
        raise ChainOffline(_NO_NETWORK)

    async def emulate_fee(self, boc: bytes) -> Nanoton | None:
        return None
