"""The composition root's small factories: one service or one mapping each (wallet, job store,
payment book, cash-out, local network, the network's root config), used by :func:`build_services`
and by CLI commands that need one part without the whole app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from app.core.errors import UserFacingError
from app.core.paths import AppPaths
from app.core.settings import NetworkName, PayoutSettings, Settings, WalletSettings
from app.devnet.devnet_root import devnet_root_config
from app.devnet.local_network import LocalNetwork
from app.network.cashout import CashoutService, CashoutStatus
from app.network.earning import EarningStatus
from app.network.jobs import JobStore
from app.network.payment_store import PaymentStore
from app.network.pipeline import Pipeline, PipelineInputs, earning_pipeline
from app.network.proxy_payments import PaymentBook
from app.network.root_config import (
    FAKE_TON_HINT,
    RootConfig,
    RootConfigError,
    parse_fake_ton_config,
)
from app.wallet.chain import ChainBackend
from app.wallet.chain_factory import NoNetwork, open_chain
from app.wallet.keyring_cache import KeyringCache
from app.wallet.node_sender import NodeSender
from app.wallet.pending import PendingSendStore
from app.wallet.service import WalletService
from app.wallet.simulated_chain import SimulatedChain
from app.wallet.vault import DEFAULT_KDF, KdfParams

# Which chain the wallet uses: custom (test-mode) networks pay in testnet-style TON.
_WALLET_NETWORK: dict[NetworkName, str] = {
    "devnet": "devnet",
    "testnet": "testnet",
    "mainnet": "mainnet",
    "custom": "testnet",
}


def wallet_network(network: NetworkName) -> str:
    """The chain the wallet uses on ``network`` (the one mapping; custom pays testnet-style TON)."""
    return _WALLET_NETWORK[network]


def owner_address(settings: Settings, wallet: WalletService) -> str:
    """Where earnings go: the owner address set by the user, else the app's active wallet ("")."""
    active = wallet.state.value.active
    return settings.worker.owner_address or (active.address if active is not None else "")


def build_wallet_service(
    paths: AppPaths,
    network: NetworkName,
    wallet_settings: WalletSettings,
    *,
    online: bool = True,
    chain: ChainBackend | None = None,
    kdf: KdfParams = DEFAULT_KDF,
    keyring: KeyringCache | None = None,
    refresh_interval_s: float | None = None,
) -> WalletService:
    """A wallet service (not started) on ``network``'s chain (``chain`` if given, else a new one);
    ``online=False`` gives it no chain at all (vault-only and offline-signing commands)."""
    chain_network = wallet_network(network)
    if chain is None:
        chain = (
            open_chain(chain_network, paths, ton_config_file=wallet_settings.ton_config_file)
            if online
            else NoNetwork()
        )
    return WalletService(
        paths,
        chain_network,
        chain,
        settings=wallet_settings,
        keyring=keyring,
        kdf=kdf,
        refresh_interval_s=refresh_interval_s,
    )


def build_job_store(paths: AppPaths) -> JobStore:
    """The job records (not started)."""
    return JobStore(paths.jobs_db)


def network_root(network: NetworkName, settings: Settings) -> RootConfig | None:
    """The root config known without earning: the local network's own, or a custom network's
    fake-TON file (read now: a bad file raises a clear error); None where only a running worker
    reads it (from the chain)."""
    if network == "devnet":
        return devnet_root_config()
    root_file = settings.worker.root_config_file.strip()
    if network == "custom" and root_file:
        path = Path(root_file).expanduser()
        try:
            return parse_fake_ton_config(path.read_bytes())
        except OSError as exc:
            raise RootConfigError(
                f"The root config file {path} cannot be read ({exc.strerror or exc}).",
                hint=FAKE_TON_HINT,
            ) from exc
    return None


def build_local_network(
    paths: AppPaths,
    settings: Settings,
    chain: SimulatedChain | None,
    *,
    state_name: str = "proxy",
    proxy_port: int = 0,
    client_port: int = 0,
    demand_per_minute: int | None = None,
) -> LocalNetwork:
    """The built-in test network (not started): its proxy keeps key and tallies in
    ``devnet/<state_name>`` and pays through ``chain``, the local network's simulated chain."""
    devnet = settings.devnet
    demand = devnet.demand_requests_per_minute if demand_per_minute is None else demand_per_minute
    return LocalNetwork(
        demand_per_minute=max(0, demand),
        proxy_port=proxy_port,
        client_port=client_port,
        state_dir=paths.devnet_dir / state_name,
        chain=chain,
        root=devnet_root_config(),
        db_commit_every=devnet.db_commit_every_ms / 1000,
        chain_commit_every=devnet.chain_commit_every_ms / 1000,
    )


def build_payment_book(paths: AppPaths, network: NetworkName) -> PaymentBook:
    """The network's proxy accounts, vouchers and payouts (not started)."""
    return PaymentBook(PaymentStore(paths.payments_db(wallet_network(network))))


async def pipeline_snapshot(paths: AppPaths, network: NetworkName, settings: Settings) -> Pipeline:
    """The earning pipeline as another process sees it (``doctor``): wallets, vouchers and
    cash-outs from disk and the chain; the live stages say the worker is not running here."""
    wallet = build_wallet_service(paths, network, settings.wallet)
    book = build_payment_book(paths, network)
    await wallet.start()
    await book.start()
    try:
        with contextlib.suppress(UserFacingError, TimeoutError):
            await asyncio.wait_for(wallet.refresh(), 10)
        payouts = await book.store.payouts()
        state = wallet.state.value
        owner = owner_address(settings, wallet)
        try:
            root = network_root(network, settings)
        except UserFacingError:
            root = None
        return earning_pipeline(
            PipelineInputs(
                earning=EarningStatus(),
                root=root,
                owner_address=owner,
                node_wallet=state.node_wallet,
                accounts=book.accounts(),
                cashout=CashoutStatus(
                    ready=wallet.node_wallet.vault() is not None,
                    last=payouts[-1] if payouts else None,
                ),
                is_test=network in ("devnet", "custom"),
            )
        )
    finally:
        await book.aclose()
        await wallet.aclose()


def build_cashout(
    book: PaymentBook,
    wallet: WalletService,
    paths: AppPaths,
    network: NetworkName,
    *,
    root: Callable[[], RootConfig | None],
    policy: Callable[[], PayoutSettings],
) -> CashoutService:
    """The cash-out policy and its executor over the node wallet (not started)."""
    # The same folder as the wallet service's own sends: one slot per wallet, the node's included.
    pending = PendingSendStore(paths.wallets_dir / "pending" / wallet_network(network))

    def sender() -> NodeSender | None:
        keys, contract = wallet.node_keys, wallet.node_wallet.contract()
        if keys is None or contract is None or keys.public_key != contract.public_key:
            return None
        return NodeSender(wallet.chain, contract, keys, pending)

    return CashoutService(book, sender=sender, root=root, policy=policy)
