"""Which ``ChainBackend`` a network uses: the persisted local chain for devnet, liteservers else."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from app.core.errors import UserFacingError
from app.core.paths import AppPaths
from app.wallet.chain import ChainBackend
from app.wallet.lite_backend import LiteBackend, load_global_config
from app.wallet.simulated_chain import SimulatedChain

DEVNET_CHAIN_FILE: Final = "chain.sqlite3"


def devnet_chain_path(paths: AppPaths) -> Path:
    return paths.devnet_dir / DEVNET_CHAIN_FILE


def open_chain(network: str, paths: AppPaths) -> ChainBackend:
    """A not yet started backend for ``network`` (``devnet``, ``testnet`` or ``mainnet``)."""
    if network == "devnet":
        return SimulatedChain(devnet_chain_path(paths))
    if network in ("testnet", "mainnet"):
        return LiteBackend(load_global_config(network))
    raise UserFacingError(
        f"The wallet does not support the '{network}' network.",
        hint="Use devnet, testnet or mainnet.",
    )
