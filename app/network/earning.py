"""``EarningController``: "Start earning" and "Stop" — the engine, the request server and the
worker brought up and down together, with one status for the UI and the headless log line.

One lane: the first selected GPU (or the CPU). The thermal guard, when given, enables and disables
the worker; an engine restart re-points the request server at the new endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import aiohttp

from app.core.billing import BillingParams
from app.core.errors import UserFacingError
from app.core.observable import Observable, Unsubscribe
from app.core.paths import AppPaths
from app.core.settings import Settings
from app.engine.catalog import load_catalog
from app.engine.endpoint import BackendEndpoint
from app.engine.gpu_probe import GpuInventory
from app.engine.guard import GuardState, ThermalGuard
from app.engine.planning import plan_engine
from app.engine.sandbox import SandboxReport
from app.engine.supervisor import ENGINE_PROGRAM, EngineStatus, EngineSupervisor
from app.network.jobs import JobStore
from app.network.proxy_payments import AccountTerms, PaymentBook, WorkerContractOf
from app.network.request_server import JobObserver, RequestServer, ServingStatus
from app.network.root_config import RootConfig
from app.network.root_watcher import (
    ConfigChange,
    ConfigSource,
    RootConfigWatcher,
    apply_to_worker,
)
from app.network.worker import CocoonWorker, WorkerStatus
from app.network.worker_config import WorkerConfig
from app.wallet.cocoon_contracts import worker_contract_address

_log = logging.getLogger(__name__)

BACKEND_CHECK_TIMEOUT = 5.0
# A user's own server does not say how many requests it serves at once; this is the default
# until they set Settings → Worker → Requests at once.
EXTERNAL_BACKEND_CAPACITY = 8
YOUR_SERVER = "your server"
IDLE_MESSAGE = "Press Start earning to serve AI requests and earn TON."
EarningPhase = Literal["stopped", "starting", "earning", "paused", "stopping", "failed"]


@dataclass(frozen=True, slots=True)
class EarningTarget:
    """Which network the worker joins: proxies, test mode, and the prices it bills at."""

    proxies: tuple[str, ...]
    is_test: bool
    is_testnet: bool
    owner_address: str
    billing: BillingParams
    router_socks5: str = ""
    # Where the root contract config comes from (proxies, prices); re-read while earning.
    root_source: ConfigSource | None = None
    # A root config that does not change while earning (the local network's own).
    root: RootConfig | None = None
    # Raises when this computer cannot serve the root config's proxies (honest admission).
    admit: Callable[[RootConfig], Awaitable[None]] | None = None
    # The router leg's attestation policy ("" = plain TCP: the built-in network, test rigs).
    router_leg: str = ""


@dataclass(frozen=True, slots=True)
class EarningStatus:
    """Everything the dashboard shows about earning, as one immutable snapshot."""

    phase: EarningPhase = "stopped"
    message: str = IDLE_MESSAGE
    model: str = ""
    device: str = ""
    sandbox: str = ""
    engine: EngineStatus | None = None
    worker: WorkerStatus | None = None
    serving: ServingStatus | None = None

    def summary(self) -> str:
        parts: list[str] = [self.phase]
        if self.worker is not None:
            w = self.worker
            parts.append(f"proxies {w.connected_proxies}")
        if self.serving is not None:
            s = self.serving
            parts.append(
                f"active {s.active}/{s.max_active} · served {s.served} · failed {s.failed} · "
                f"tokens {s.tokens.total_tokens_used}"
            )
        if self.phase in {"failed", "paused", "starting"} and self.message:
            parts.append(self.message)
        return " · ".join(parts)


InventoryProbe = Callable[[], Awaitable[GpuInventory]]
SandboxProbe = Callable[[], Awaitable[SandboxReport]]


@dataclass(slots=True)
class _Lane:
    """The parts of one running earning session, closed in reverse order of creation."""

    server: RequestServer | None = None
    engine: EngineSupervisor | None = None
    worker: CocoonWorker | None = None
    watcher: RootConfigWatcher | None = None
    unsubscribers: tuple[Unsubscribe, ...] = ()


async def check_backend(endpoint: BackendEndpoint) -> None:
    """Ask a user-supplied backend for ``/v1/models``; a clear error if it does not answer."""
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(BACKEND_CHECK_TIMEOUT)) as session,
            session.get(f"{endpoint.base_url}/v1/models", headers=headers) as response,
        ):
            if response.status >= 400:
                raise UserFacingError(
                    f"Your server at {endpoint.base_url} answered /v1/models with HTTP "
                    f"{response.status}.",
                    hint="Check that it is an OpenAI-compatible server and its API key.",
                )
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UserFacingError(
            f"Your server at {endpoint.base_url} is not answering ({type(exc).__name__}).",
            hint="Start it first, or clear Settings → Engine → backend URL to use the built-in "
            "engine.",
        ) from None


def account_terms(
    billing: BillingParams, root: RootConfig | None
) -> tuple[AccountTerms, WorkerContractOf | None]:
    """What new proxy accounts are opened with: the fee, the params generation, and (when the
    root config carries the worker code) the worker contract our owner must be named."""
    terms = AccountTerms(
        fee_per_token=billing.worker_fee_per_token,
        params_version=root.params_version if root is not None else 0,
    )
    if root is None or root.worker_sc_code is None:
        return terms, None
    config = root

    def worker_contract_of(proxy_sc: str, proxy_key: bytes, owner: str) -> str:
        return worker_contract_address(
            owner=owner, proxy_sc=proxy_sc, proxy_public_key=proxy_key, root=config
        )

    return terms, worker_contract_of


class EarningController:
    """A service whose ``start``/``aclose`` bound its life; :meth:`start_earning` does the work.

    ``settings`` and ``target`` are read at each start, so a change applies on the next start.
    ``engine_program`` replaces the engine child (tests use small programs). ``observer`` (e.g.
    :class:`app.network.job_energy.MeteredJobs`) is told when each served job starts and ends.
    """

    def __init__(
        self,
        *,
        paths: AppPaths,
        settings: Callable[[], Settings],
        target: Callable[[], EarningTarget],
        jobs: JobStore,
        probe_inventory: InventoryProbe,
        probe_sandbox: SandboxProbe,
        guard: ThermalGuard | None = None,
        engine_program: tuple[str, ...] | None = None,
        observer: JobObserver | None = None,
        payments: PaymentBook | None = None,
    ) -> None:
        self._paths = paths
        self._settings = settings
        self._target = target
        self._jobs = jobs
        self._probe_inventory = probe_inventory
        self._probe_sandbox = probe_sandbox
        self._guard = guard
        self._engine_program = engine_program
        self._observer = observer
        self._payments = payments
        self.current_root: RootConfig | None = None
        self._lane: _Lane | None = None
        self._lock = asyncio.Lock()
        self.status: Observable[EarningStatus] = Observable(EarningStatus())

    @property
    def earning(self) -> bool:
        return self._lane is not None

    async def start(self) -> None:
        """Nothing runs until :meth:`start_earning`; present for the service contract."""

    async def aclose(self) -> None:
        await self.stop_earning()

    async def start_earning(self) -> None:
        """Start the engine (unless an external backend is set), then serve; raises on failure.

        The failure is also published as ``phase == "failed"`` with a message for the user.
        """
        async with self._lock:
            if self._lane is not None:
                return
            lane = _Lane()
            self._lane = lane
            try:
                await self._bring_up(lane)
            except (UserFacingError, OSError) as exc:
                message = exc.describe() if isinstance(exc, UserFacingError) else str(exc)
                _log.warning("could not start earning: %s", message)
                await self._tear_down(lane)
                self._lane = None
                self._publish(phase="failed", message=message)
                raise
            except BaseException:
                await self._tear_down(lane)
                self._lane = None
                self._publish(phase="stopped", message="Start was cancelled.")
                raise

    async def stop_earning(self) -> None:
        async with self._lock:
            lane, self._lane = self._lane, None
            if lane is None:
                return
            self._publish(phase="stopping", message="Finishing running requests…")
            await self._tear_down(lane)
            self._publish(phase="stopped", message=IDLE_MESSAGE)

    # --- bring-up -----------------------------------------------------------------------

    async def _bring_up(self, lane: _Lane) -> None:
        settings = self._settings()
        target = self._target()
        self._publish(phase="starting", message="Checking this computer…")
        root = target.root
        if target.root_source is not None:
            self._publish(message="Reading the network's configuration…")
            root = await target.root_source()
            if target.admit is not None:
                await target.admit(root)
            proxies = tuple(str(p) for p in root.proxy_addresses)
            if not proxies:
                raise UserFacingError("The network's configuration lists no proxy to connect to.")
            target = dataclasses.replace(
                target,
                proxies=proxies,
                billing=BillingParams.from_root_config(root),
                is_test=target.is_test or root.is_test,
            )
        if settings.engine.backend_url:
            endpoint = BackendEndpoint.from_url(
                settings.engine.backend_url,
                capacity=settings.worker.max_active_requests or EXTERNAL_BACKEND_CAPACITY,
            )
            model = settings.engine.model
            if not model:
                raise UserFacingError(
                    "Set the model name your own server serves.",
                    hint="Settings → Engine → Model, e.g. Qwen/Qwen3-8B.",
                )
            self._publish(model=model, device=YOUR_SERVER, sandbox=YOUR_SERVER)
            await check_backend(endpoint)
        else:
            endpoint, model = await self._start_engine(lane, settings)
        max_active = settings.worker.max_active_requests or endpoint.capacity
        lane.server = RequestServer(
            endpoint,
            model=model,
            billing=target.billing,
            max_active_requests=max_active,
            jobs=self._jobs,
            observer=self._observer,
        )
        await lane.server.start()
        config = WorkerConfig.from_strings(
            proxies=target.proxies,
            model=model,
            owner_address=target.owner_address,
            max_active_requests=max_active,
            coefficient=settings.worker.coefficient,
            is_test=target.is_test,
            is_testnet=target.is_testnet,
            proxy_connections=settings.worker.proxy_connections,
            router_socks5=target.router_socks5,
            router_leg=target.router_leg,
        )
        self.current_root = root
        if self._payments is not None:
            self._payments.configure(
                *account_terms(target.billing, root),
                exposure_cap_nanoton=settings.payouts.exposure_cap_nanoton,
            )
        lane.worker = CocoonWorker(config, server=lane.server, payments=self._payments)
        subscriptions = [
            lane.server.status.subscribe(lambda _: self._publish()),
            lane.worker.status.subscribe(lambda _: self._publish()),
        ]
        if self._guard is not None:
            subscriptions.append(self._guard.state.subscribe(self._on_guard))
            lane.worker.set_enabled(self._guard.state.value.accepting, source="thermal")
        lane.unsubscribers = (*lane.unsubscribers, *subscriptions)
        await lane.worker.start()
        if target.root_source is not None:
            lane.watcher = RootConfigWatcher(
                target.root_source, on_change=self._root_changed(lane), initial=root
            )
            await lane.watcher.start()
        self._publish(phase="earning", message="Connecting to the network…")

    async def _start_engine(self, lane: _Lane, settings: Settings) -> tuple[BackendEndpoint, str]:
        inventory = await self._probe_inventory()
        catalog = await asyncio.to_thread(load_catalog)
        plan = plan_engine(inventory, catalog, settings.engine, self._paths.models_dir)
        sandbox = await self._probe_sandbox()
        self._publish(
            model=plan.choice.model.name,
            device=plan.device_label,
            sandbox=f"{sandbox.level.value} — {sandbox.reason}",
            message=f"Loading {plan.choice.model.name}…",
        )
        lane.engine = EngineSupervisor(
            plan.launch,
            run_dir=self._paths.run_dir,
            log_dir=self._paths.log_dir,
            sandbox=sandbox,
            program=self._engine_program or ENGINE_PROGRAM,
        )
        engine = lane.engine
        lane.unsubscribers = (
            *lane.unsubscribers,
            engine.status.subscribe(lambda status: self._on_engine(lane, status)),
        )
        await engine.start()
        endpoint = await engine.wait_ready()
        return endpoint, plan.choice.model.name

    # --- reactions ----------------------------------------------------------------------

    def _on_engine(self, lane: _Lane, status: EngineStatus) -> None:
        if status.state == "ready" and status.endpoint is not None and lane.server is not None:
            lane.server.set_endpoint(status.endpoint)
        self._publish()

    def _on_guard(self, state: GuardState) -> None:
        lane = self._lane
        if lane is not None and lane.worker is not None:
            lane.worker.set_enabled(state.accepting, source="thermal")
        self._publish()

    def _root_changed(self, lane: _Lane) -> ConfigChange:
        """New proxies or params: re-point the worker, and bill at the new prices."""
        if lane.worker is None:  # pragma: no cover - the worker is created before the watcher
            raise RuntimeError("the worker must exist before the root config watcher")
        apply = apply_to_worker(lane.worker)

        def changed(old: RootConfig | None, new: RootConfig) -> None:
            apply(old, new)
            billing = BillingParams.from_root_config(new)
            if lane.server is not None:
                lane.server.billing = billing
            self.current_root = new
            if self._payments is not None:
                # Accounts opened after a params change have the new fee and generation; the
                # older ones are retired and cashed out by the policy.
                self._payments.configure(
                    *account_terms(billing, new),
                    exposure_cap_nanoton=self._settings().payouts.exposure_cap_nanoton,
                )

        return changed

    async def _tear_down(self, lane: _Lane) -> None:
        for unsubscribe in lane.unsubscribers:
            unsubscribe()
        for part in (lane.watcher, lane.worker, lane.server, lane.engine):
            if part is None:
                continue
            with contextlib.suppress(Exception):
                await part.aclose()

    # --- status -------------------------------------------------------------------------

    def _publish(
        self,
        *,
        phase: EarningPhase | None = None,
        message: str | None = None,
        model: str | None = None,
        device: str | None = None,
        sandbox: str | None = None,
    ) -> None:
        now = self.status.value
        lane = self._lane
        new_phase = phase or now.phase
        new_message = now.message if message is None else message
        worker = lane.worker.status.value if lane and lane.worker else None
        if phase is None and new_phase in {"earning", "paused"} and worker is not None:
            new_phase, new_message = self._running_phase(worker)
        self.status.set(
            EarningStatus(
                phase=new_phase,
                message=new_message,
                model=now.model if model is None else model,
                device=now.device if device is None else device,
                sandbox=now.sandbox if sandbox is None else sandbox,
                engine=lane.engine.status.value if lane and lane.engine else None,
                worker=worker,
                serving=lane.server.status.value if lane and lane.server else None,
            )
        )

    def _running_phase(self, worker: WorkerStatus) -> tuple[EarningPhase, str]:
        if self._guard is not None and not self._guard.state.value.accepting:
            return "paused", self._guard.state.value.reason
        if worker.connected_proxies == 0:
            detail = f" ({worker.last_error})" if worker.last_error else ""
            return "earning", f"Connecting to the network…{detail}"
        plural = "proxy" if worker.connected_proxies == 1 else "proxies"
        return "earning", f"Serving requests from {worker.connected_proxies} {plural}."
