"""Composition root: builds every service from the settings and wires them together.

Nothing else in the app constructs services; the CLI and the UI receive a ready :class:`Services`.
Tests and the headless CLI adjust the build through :class:`BuildOptions` (a fake NVML module, a
small engine program, settings overrides that are not saved).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from app.core.errors import UserFacingError
from app.core.money import format_ton
from app.core.observable import Observable
from app.core.paths import AppPaths
from app.core.service import ServiceGroup
from app.core.settings import NetworkName, Settings, WalletSettings
from app.core.settings_store import SettingsStore
from app.devnet.local_network import LocalNetwork
from app.engine.energy import EnergyMeter
from app.engine.gpu_probe import GpuInventory, probe
from app.engine.guard import GuardConfig, ThermalGuard
from app.engine.sandbox import SandboxReport, detect_sandbox
from app.engine.telemetry import GpuTelemetry
from app.network.billing import BillingParams
from app.network.earning import EarningController, EarningStatus, EarningTarget
from app.network.job_energy import MeteredJobs
from app.network.jobs import JobStore
from app.network.root_watcher import file_source
from app.wallet.chain import ChainBackend
from app.wallet.chain_factory import NoNetwork, open_chain
from app.wallet.keyring_cache import KeyringCache
from app.wallet.service import WalletService
from app.wallet.simulated_chain import SimulatedChain
from app.wallet.vault import DEFAULT_KDF, KdfParams

_NO_NVML: Any = object()
# Which chain the wallet uses: custom (test-mode) networks pay in testnet-style TON.
_WALLET_NETWORK: dict[NetworkName, str] = {
    "devnet": "devnet",
    "testnet": "testnet",
    "mainnet": "mainnet",
    "custom": "testnet",
}
# Where devnet earnings go until the user has a wallet: a fixed, keyless address of the local
# network (nobody can spend from it; the dashboard asks the user to create a wallet).
DEVNET_UNCLAIMED_OWNER = "0QAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAATky"  # raw 0:00…01


@dataclass(frozen=True, slots=True)
class AppStatus:
    """The whole app's state in brief: the headless status line and the tray tooltip."""

    network: NetworkName
    started_at: float
    phase: str = "starting"
    earning: EarningStatus = field(default_factory=EarningStatus)
    hottest_gpu_c: int | None = None

    def summary(self) -> str:
        uptime = int(time.monotonic() - self.started_at)
        parts = [f"[{self.network}] {self.phase}", f"up {uptime // 60}m{uptime % 60:02d}s"]
        if self.phase == "running":
            parts.append(self.earning.summary())
        if self.hottest_gpu_c is not None:
            parts.append(f"GPU {self.hottest_gpu_c} °C")
        if self.serving_earned:
            parts.append(f"earned {format_ton(self.serving_earned, trim=True)} TON")
        return " · ".join(parts)

    @property
    def serving_earned(self) -> int:
        serving = self.earning.serving
        return serving.earned_nanotons if serving is not None else 0


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
    earning: EarningController
    group: ServiceGroup
    effective_settings: Callable[[], Settings]
    status: Observable[AppStatus]
    _unsubscribers: list[Callable[[], None]] = field(default_factory=list)
    _applying: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._set(phase="starting")
        await self.group.start()
        self._unsubscribers += [
            self.telemetry.snapshot.subscribe(self.energy.feed),
            self.telemetry.snapshot.subscribe(lambda _: self._set()),
            self.earning.status.subscribe(lambda _: self._set()),
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
            )
        )


def wallet_network(network: NetworkName) -> str:
    """The chain the wallet uses on ``network`` (the one mapping; custom pays testnet-style TON)."""
    return _WALLET_NETWORK[network]


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
        chain = open_chain(chain_network, paths) if online else NoNetwork()
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
    chain = open_chain(wallet_network(network), paths)
    wallet = build_wallet_service(
        paths,
        network,
        first.wallet,
        chain=chain,
        keyring=keyring,
        kdf=opts.wallet_kdf,
        refresh_interval_s=opts.wallet_refresh_s,
    )
    local = (
        LocalNetwork(demand_per_minute=first.devnet.demand_requests_per_minute)
        if network == "devnet"
        else None
    )

    async def inventory() -> GpuInventory:
        return await probe(**nvml_kwargs)

    async def sandbox() -> SandboxReport:
        return await asyncio.to_thread(detect_sandbox)

    earning = EarningController(
        paths=paths,
        settings=effective,
        target=lambda: _target(network, effective(), local, wallet),
        jobs=jobs,
        probe_inventory=inventory,
        probe_sandbox=sandbox,
        guard=guard,
        engine_program=opts.engine_program,
        # Energy per job, and the meter's earnings for TON per kWh (recorded only here).
        observer=MeteredJobs(energy),
    )
    parts: list[tuple[str, Any]] = [
        ("jobs", jobs),
        ("telemetry", telemetry),
        ("guard", guard),
        ("wallet", wallet),
    ]
    if local is not None:
        parts.append(("local network", local))
    parts.append(("earning", earning))
    return Services(
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
        earning=earning,
        group=ServiceGroup(parts),
        effective_settings=effective,
        status=Observable(AppStatus(network=network, started_at=time.monotonic())),
    )


def _target(
    network: NetworkName, settings: Settings, local: LocalNetwork | None, wallet: WalletService
) -> EarningTarget:
    active = wallet.state.value.active
    owner = settings.worker.owner_address or (active.address if active is not None else "")
    if network == "devnet":
        if local is None:  # pragma: no cover - built together in build_services
            raise UserFacingError("The local test network is not running.")
        return EarningTarget(
            proxies=(local.proxy_address,),
            is_test=True,
            is_testnet=True,
            owner_address=owner or DEVNET_UNCLAIMED_OWNER,
            billing=BillingParams(),
            router_socks5=settings.worker.router_socks5,
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
        )
    raise UserFacingError(
        f"Earning on {network} is not possible from this computer yet.",
        hint="COCOON's official proxies admit only workers in Intel TDX confidential VMs with "
        "attested images. Use the local test network (devnet), or a test-mode proxy "
        "(--network custom --proxy HOST:PORT).",
    )
