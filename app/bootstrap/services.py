"""``Services`` and :func:`build_services`: every service of one network built and wired together,
and the app-wide status the front ends show."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from app.bootstrap.factories import (
    build_cashout,
    build_job_store,
    build_local_network,
    build_payment_book,
    build_wallet_service,
    owner_address,
    wallet_network,
)
from app.bootstrap.metrics_factory import metrics_server
from app.core.billing import BillingParams
from app.core.errors import UserFacingError
from app.core.money import format_ton
from app.core.observable import Observable
from app.core.paths import AppPaths
from app.core.service import ServiceGroup
from app.core.settings import NetworkName, Settings
from app.core.settings_store import SettingsStore
from app.devnet.devnet_root import devnet_root_config
from app.devnet.local_network import LocalNetwork
from app.engine.energy import EnergyMeter
from app.engine.gpu_probe import GpuInventory, probe
from app.engine.guard import GuardConfig, ThermalGuard
from app.engine.sandbox import SandboxReport, detect_sandbox
from app.engine.tee import probe_tee
from app.engine.telemetry import GpuTelemetry
from app.network.admission import admission
from app.network.cashout import CashoutService, CashoutStatus
from app.network.earning import EarningController, EarningStatus, EarningTarget
from app.network.job_energy import MeteredJobs
from app.network.jobs import JobStore
from app.network.payment_store import ProxyAccount
from app.network.pipeline import Pipeline, PipelineInputs, earning_pipeline
from app.network.proxy_payments import PaymentBook
from app.network.root_config import (
    KNOWN_ROOT_CONTRACTS,
    RootConfig,
)
from app.network.root_watcher import chain_source, file_source
from app.wallet.chain import ChainBackend
from app.wallet.chain_factory import open_chain
from app.wallet.earning_wallets import WalletSetup, fund_node_wallet, prepare_earning_wallets
from app.wallet.global_config import ConfigRefresher
from app.wallet.keyring_cache import KeyringCache
from app.wallet.service import WalletService
from app.wallet.simulated_chain import SimulatedChain
from app.wallet.vault import DEFAULT_KDF, KdfParams
from app.wallet.wallet_state import WalletState

_log = logging.getLogger(__name__)
_NO_NVML: Any = object()


@dataclass(frozen=True, slots=True)
class AppStatus:
    """The whole app's state in brief: the headless status line and the tray tooltip."""

    network: NetworkName
    started_at: float
    phase: str = "starting"
    earning: EarningStatus = field(default_factory=EarningStatus)
    hottest_gpu_c: int | None = None
    earnings: EarningsSummary = field(default_factory=lambda: EarningsSummary())

    def summary(self) -> str:
        uptime = int(time.monotonic() - self.started_at)
        parts = [f"[{self.network}] {self.phase}", f"up {uptime // 60}m{uptime % 60:02d}s"]
        if self.phase == "running":
            parts.append(self.earning.summary())
        if self.hottest_gpu_c is not None:
            parts.append(f"GPU {self.hottest_gpu_c} °C")
        money = self.earnings
        if money.earned_nanoton or money.paid_nanoton:
            parts.append(
                f"earned {format_ton(money.earned_nanoton, trim=True)} · vouchered "
                f"{format_ton(money.vouchered_nanoton, trim=True)} · paid "
                f"{format_ton(money.paid_nanoton, trim=True)} TON"
            )
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class EarningsSummary:
    """The ledger's running totals (nanotons): what proxies counted, what vouchers cover, what
    reached the owner's wallet."""

    earned_nanoton: int = 0
    vouchered_nanoton: int = 0
    paid_nanoton: int = 0

    @classmethod
    def of(cls, accounts: Iterable[ProxyAccount], cashout: CashoutStatus) -> EarningsSummary:
        listed = list(accounts)
        return cls(
            earned_nanoton=sum(a.earned_nanoton for a in listed),
            vouchered_nanoton=sum(a.vouchered_nanoton for a in listed),
            paid_nanoton=cashout.paid_nanoton,
        )


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """How a particular run differs from the defaults (tests, the headless CLI)."""

    nvml: ModuleType | Any | None = _NO_NVML
    engine_program: tuple[str, ...] | None = None
    override: Callable[[Settings], Settings] | None = None
    telemetry_interval: float = 1.0
    wallet_refresh_s: float | None = 30.0
    wallet_kdf: KdfParams = DEFAULT_KDF
    keyring: KeyringCache | None = None
    # The TON network backend: tests put a simulated chain where a live network would be.
    chain: ChainBackend | None = None


@dataclass(slots=True)
class Services:
    """Everything the front ends (CLI, UI) may use. Built by :func:`build_services` only."""

    paths: AppPaths
    settings: SettingsStore
    network: NetworkName
    jobs: JobStore
    telemetry: GpuTelemetry
    guard: ThermalGuard
    energy: EnergyMeter
    wallet: WalletService
    keyring: KeyringCache
    chain: ChainBackend
    local_network: LocalNetwork | None
    payments: PaymentBook
    cashout: CashoutService
    root: RootConfig | None
    earning: EarningController
    group: ServiceGroup
    effective_settings: Callable[[], Settings]
    status: Observable[AppStatus]
    _unsubscribers: list[Callable[[], None]] = field(default_factory=list)
    _applying: set[asyncio.Task[None]] = field(default_factory=set)
    _funding: bool = False

    async def start(self) -> None:
        self._set(phase="starting")
        await self.group.start()
        self._unsubscribers += [
            self.telemetry.snapshot.subscribe(self.energy.feed),
            self.telemetry.snapshot.subscribe(lambda _: self._set()),
            self.earning.status.subscribe(lambda _: self._set()),
            self.payments.state.subscribe(lambda _: self._set()),
            self.cashout.status.subscribe(lambda _: self._set()),
            # Unlocking the wallet unlocks the node wallet too: cash-outs become possible.
            self.wallet.state.subscribe(lambda _: self.cashout.refresh()),
            self.wallet.state.subscribe(self._fund_devnet_node_wallet),
            self.settings.current.subscribe(lambda _: self._apply_settings()),
        ]
        self._set(phase="running")

    async def aclose(self) -> None:
        self._set(phase="stopping")
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()
        await asyncio.gather(*self._applying, return_exceptions=True)
        await self.group.aclose()
        self._set(phase="stopped")

    def status_line(self) -> str:
        return self.status.value.summary()

    def _apply_settings(self) -> None:
        """Saved settings reach the running guard and energy meter without a restart (the
        engine and the worker pick theirs up at the next Start earning)."""
        engine = self.effective_settings().engine
        self.energy.set_price(engine.electricity_price_nanoton_per_kwh)
        task = asyncio.get_running_loop().create_task(
            self.guard.reconfigure(GuardConfig.from_settings(engine)), name="apply guard settings"
        )
        self._applying.add(task)
        task.add_done_callback(self._applying.discard)

    def _fund_devnet_node_wallet(self, state: WalletState) -> None:
        """On the local network a node wallet short of gas (e.g. just created on the Wallet
        page) gets it from the faucet, as the pipeline promises."""
        faucet = self.faucet_chain
        node = state.node_wallet
        if faucet is None or node is None or node.ready or self._funding:
            return
        self._funding = True

        async def fund() -> None:
            try:
                await fund_node_wallet(self.wallet, faucet)
                await self.wallet.refresh()
            except UserFacingError as exc:  # the local chain is a file: say it, do not crash
                _log.warning("could not give the node wallet gas: %s", exc.describe())
            finally:
                self._funding = False

        task = asyncio.get_running_loop().create_task(fund(), name="devnet node gas")
        self._applying.add(task)
        task.add_done_callback(self._applying.discard)

    async def prepare_wallets(self, password: Callable[[], str | None]) -> WalletSetup:
        """Before earning: the owner's wallet (created on devnet when there is none and no
        owner address is set), the node wallet unlocked, devnet gas. ``password`` is called
        only when something needs it."""
        settings = self.effective_settings()
        setup = await prepare_earning_wallets(
            self.wallet,
            password=password,
            faucet=self.faucet_chain,
            create_if_missing=self.network == "devnet" and not settings.worker.owner_address,
        )
        if setup.created and setup.owner is not None:
            wallet_id = setup.owner.wallet_id
            self.settings.update(
                lambda s: dataclasses.replace(
                    s, wallet=dataclasses.replace(s.wallet, active_wallet=wallet_id)
                )
            )
        return setup

    def pipeline(self) -> Pipeline:
        """Why earning works or not, stage by stage (``doctor`` and the dashboard show it)."""
        owner = owner_address(self.effective_settings(), self.wallet)
        return earning_pipeline(
            PipelineInputs(
                earning=self.earning.status.value,
                root=self.earning.current_root or self.root,
                owner_address=owner,
                node_wallet=self.wallet.state.value.node_wallet,
                accounts=self.payments.state.value.values(),
                cashout=self.cashout.status.value,
                is_test=self.network in ("devnet", "custom"),
            )
        )

    @property
    def faucet_chain(self) -> SimulatedChain | None:
        """The local network's simulated chain (it can mint test TON), else None."""
        return self.chain if isinstance(self.chain, SimulatedChain) else None

    def _set(self, *, phase: str | None = None) -> None:
        now = self.status.value
        temps = [
            reading.sample.temperature_c
            for reading in self.telemetry.snapshot.value.gpus
            if reading.sample is not None and reading.sample.temperature_c is not None
        ]
        self.status.set(
            AppStatus(
                network=self.network,
                started_at=now.started_at,
                phase=phase or now.phase,
                earning=self.earning.status.value,
                hottest_gpu_c=max(temps) if temps else None,
                earnings=EarningsSummary.of(
                    self.payments.state.value.values(), self.cashout.status.value
                ),
            )
        )


def build_services(
    paths: AppPaths,
    settings: SettingsStore,
    network: NetworkName,
    options: BuildOptions | None = None,
) -> Services:
    """Create (but do not start) the services for ``network``."""
    opts = options or BuildOptions()

    def effective() -> Settings:
        current = settings.current.value
        return opts.override(current) if opts.override is not None else current

    first = effective()
    nvml_kwargs: dict[str, Any] = {} if opts.nvml is _NO_NVML else {"nvml": opts.nvml}
    telemetry = GpuTelemetry(
        interval=opts.telemetry_interval, indices=first.engine.gpu_indices, **nvml_kwargs
    )
    guard = ThermalGuard(telemetry, GuardConfig.from_settings(first.engine))
    energy = EnergyMeter(price_nanoton_per_kwh=first.engine.electricity_price_nanoton_per_kwh)
    jobs = build_job_store(paths)
    # One keyring cache for the service and the UI, or "unlock with saved key" cannot work.
    keyring = opts.keyring or KeyringCache()
    chain = opts.chain or open_chain(
        wallet_network(network), paths, ton_config_file=first.wallet.ton_config_file
    )
    wallet = build_wallet_service(
        paths,
        network,
        first.wallet,
        chain=chain,
        keyring=keyring,
        kdf=opts.wallet_kdf,
        refresh_interval_s=opts.wallet_refresh_s,
    )
    # Only the local network's root config is fixed; elsewhere the earning session reads it.
    root = devnet_root_config() if network == "devnet" else None
    local = (
        build_local_network(paths, first, chain if isinstance(chain, SimulatedChain) else None)
        if network == "devnet"
        else None
    )
    payments = build_payment_book(paths, network)

    async def inventory() -> GpuInventory:
        return await probe(**nvml_kwargs)

    async def sandbox() -> SandboxReport:
        return await asyncio.to_thread(detect_sandbox)

    earning = EarningController(
        paths=paths,
        settings=effective,
        target=lambda: _target(network, effective(), local, wallet, root),
        jobs=jobs,
        probe_inventory=inventory,
        probe_sandbox=sandbox,
        guard=guard,
        engine_program=opts.engine_program,
        # Energy per job, and the meter's earnings for TON per kWh (recorded only here).
        observer=MeteredJobs(energy),
        payments=payments,
    )
    cashout = build_cashout(
        payments,
        wallet,
        paths,
        network,
        root=lambda: earning.current_root or root,
        policy=lambda: effective().payouts,
    )
    parts: list[tuple[str, Any]] = [
        ("jobs", jobs),
        ("telemetry", telemetry),
        ("guard", guard),
        ("wallet", wallet),
        ("payments", payments),
    ]
    if wallet_network(network) != "devnet":
        parts.append(("TON config refresh", ConfigRefresher(wallet_network(network), paths)))
    if local is not None:
        parts.append(("local network", local))
    parts += [("earning", earning), ("cash-out", cashout)]
    built: list[Services] = []  # the metrics endpoint reads the services once they exist
    if first.general.metrics_port > 0:
        # First: a refused token fails the start before anything else has started.
        parts.insert(0, ("metrics", metrics_server(first.general, earning, lambda: built[0])))
    services = Services(
        paths=paths,
        settings=settings,
        network=network,
        jobs=jobs,
        telemetry=telemetry,
        guard=guard,
        energy=energy,
        wallet=wallet,
        keyring=keyring,
        chain=chain,
        local_network=local,
        payments=payments,
        cashout=cashout,
        root=root,
        earning=earning,
        group=ServiceGroup(parts),
        effective_settings=effective,
        status=Observable(AppStatus(network=network, started_at=time.monotonic())),
    )
    built.append(services)
    return services


def _target(
    network: NetworkName,
    settings: Settings,
    local: LocalNetwork | None,
    wallet: WalletService,
    root: RootConfig | None,
) -> EarningTarget:
    owner = owner_address(settings, wallet)
    if network == "devnet":
        if local is None or root is None:  # pragma: no cover - built together in build_services
            raise UserFacingError("The local test network is not running.")
        if not owner:
            raise UserFacingError(
                "Create or import a wallet first: the local network pays your earnings into it.",
                hint="Wallet → Create wallet, or `cocoon-provider wallet create`; or set "
                "Settings → Worker → Owner address.",
            )
        return EarningTarget(
            proxies=(local.proxy_address,),
            is_test=True,
            is_testnet=True,
            owner_address=owner,
            billing=BillingParams.from_root_config(root),
            router_socks5=settings.worker.router_socks5,
            root=root,
        )
    if network == "custom":
        root_file = settings.worker.root_config_file.strip()
        if not settings.worker.proxies and not root_file:
            raise UserFacingError(
                "No proxy to connect to on the custom network.",
                hint="Add proxies in Settings → Worker, pass --proxy HOST:PORT, or give a test "
                "network's root config with --root-config FILE.",
            )
        if not owner:
            raise UserFacingError(
                "Set the address that receives your earnings.",
                hint="Settings → Worker → Owner address, or --owner-address ADDR.",
            )
        return EarningTarget(
            proxies=settings.worker.proxies,
            is_test=True,
            is_testnet=True,
            owner_address=owner,
            billing=BillingParams(),
            router_socks5=settings.worker.router_socks5,
            root_source=file_source(Path(root_file).expanduser()) if root_file else None,
            router_leg="" if settings.worker.plain_tcp else settings.worker.router_policy,
        )
    address = settings.worker.root_contract_address.strip() or KNOWN_ROOT_CONTRACTS.get(network, "")
    if not address:
        raise UserFacingError(
            f"There is no known COCOON root contract on {network}.",
            hint="Set Settings → Worker → Root contract (the network's root contract address).",
        )
    if not owner:
        raise UserFacingError(
            "Set the address that receives your earnings.",
            hint="Create or import a wallet, or Settings → Worker → Owner address.",
        )
    model = settings.engine.model

    async def admit(root: RootConfig) -> None:
        tee = await asyncio.to_thread(probe_tee)
        admission(root, tee, model).raise_if_refused()

    return EarningTarget(
        proxies=(),
        is_test=False,
        is_testnet=network == "testnet",
        owner_address=owner,
        billing=BillingParams(),
        router_socks5=settings.worker.router_socks5,
        root_source=chain_source(wallet.chain, address),
        admit=admit,
        router_leg=settings.worker.router_policy,
    )
