"""``CocoonWorker``: the service that keeps proxy sessions alive and publishes ``WorkerStatus``.

Targets are chosen from the configured proxies; a closed session is re-dialled after 10 s and a
target not ready for 300 s is replaced by another proxy (docs/protocol.md §2.5, §4.4).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from app.core.observable import Observable
from app.network.answer_sink import RequestLedger
from app.network.dialer import dialer_for
from app.network.proxy_payments import PaymentBook
from app.network.proxy_session import (
    Dialer,
    ProxySession,
    RequestServing,
    SessionState,
    SessionTimers,
)
from app.network.worker_config import MAX_COEFFICIENT, ProxyAddress, WorkerConfig

_log = logging.getLogger(__name__)

# Reasons that are our own doing and not worth a warning.
_QUIET_REASONS = ("session stopped", "replaced by another proxy", "worker stopped", "reconnecting")


@dataclass(frozen=True, slots=True)
class WorkerTimers:
    """Reference timers (BaseRunner, TcpClient); tests shrink them."""

    tick: tuple[float, float] = (1.0, 2.0)
    redial_after: float = 10.0
    replace_after: float = 300.0
    session: SessionTimers = field(default_factory=SessionTimers)


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """What the worker is doing, for the UI and the headless log line.

    ``connected_proxies`` counts links that completed the handshake; ``tokens`` is the sum of
    adjusted tokens billed in final infos since start; ``last_error`` the latest link failure.
    """

    running: bool = False
    enabled: bool = True
    disabled_by: tuple[str, ...] = ()
    coefficient: int = 1000
    connected_proxies: int = 0
    proxies: tuple[SessionState, ...] = ()
    active_requests: int = 0
    served: int = 0
    failed: int = 0
    tokens: int = 0
    last_error: str = ""


@dataclass(slots=True)
class _Target:
    address: ProxyAddress
    last_ready: float
    next_dial: float
    session: ProxySession | None = None
    task: asyncio.Task[str] | None = None
    last_state: SessionState | None = None


class CocoonWorker:
    """Keeps ``config.proxy_connections`` proxy sessions serving through ``server``.

    ``server`` is the :class:`~app.network.request_server.RequestServer` (anything with its
    ``serve(query, request, sink)``). ``dial`` defaults to SOCKS5 via ``config.router_socks5``
    when set, else direct TCP. ``set_enabled(False)`` (thermal guard, operator) tells every proxy
    to stop routing new requests; running ones finish.
    """

    def __init__(
        self,
        config: WorkerConfig,
        *,
        server: RequestServing,
        payments: PaymentBook | None = None,
        timers: WorkerTimers | None = None,
        dial: Dialer | None = None,
    ) -> None:
        self.config = config
        # Without a book of its own (tests, tools) the worker keeps its accounts in memory.
        self._owns_payments = payments is None
        self.payments = payments or PaymentBook.in_memory()
        self._server = server
        self._timers = timers or WorkerTimers()
        self._dial = dial or dialer_for(
            router_socks5=config.router_socks5, router_leg=config.router_leg
        )
        self._ledger = RequestLedger(self._publish)
        self._targets: list[_Target] = []
        self._retired: set[asyncio.Task[str]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self._enabled = True
        self._disabled_by: set[str] = set()
        self._coefficient = config.coefficient
        self._last_error = ""
        self._running = False
        self.status: Observable[WorkerStatus] = Observable(
            WorkerStatus(coefficient=config.coefficient)
        )

    async def start(self) -> None:
        if self._supervisor is not None:
            return
        if self._owns_payments:
            await self.payments.start()
        self._running = True
        self._supervisor = asyncio.create_task(self._supervise(), name="cocoon-worker")
        self._publish()

    async def aclose(self) -> None:
        supervisor, self._supervisor = self._supervisor, None
        self._running = False
        if supervisor is not None:
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
        tasks = list(self._retired)
        for target in self._targets:
            if target.session is not None:
                target.session.close("worker stopped")
            if target.task is not None:
                tasks.append(target.task)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._targets.clear()
        if self._owns_payments:
            await self.payments.aclose()
        self._publish()

    def set_enabled(self, enabled: bool, *, source: str = "operator") -> None:
        """Accept new requests or not; disabled while any ``source`` says so.

        Sources are independent switches (``"operator"``, ``"thermal"``, ``"backend"``...): the
        thermal guard re-enabling does not override an operator's pause. Proxies are told with
        ``worker.enabledDisabled`` and stop routing; running requests finish.
        """
        if enabled:
            self._disabled_by.discard(source)
        else:
            self._disabled_by.add(source)
        self._enabled = not self._disabled_by
        for session in self._sessions():
            session.set_enabled(self._enabled)
        self._publish()

    def set_coefficient(self, coefficient: int) -> None:
        """Change the price coefficient ×1000 on every link (and for future handshakes)."""
        if not 0 <= coefficient <= MAX_COEFFICIENT:
            raise ValueError("coefficient must be in [0, 10^9)")
        self._coefficient = coefficient
        for session in self._sessions():
            session.set_coefficient(coefficient)
        self._publish()

    def set_proxies(self, proxies: Sequence[ProxyAddress]) -> None:
        """Use a new proxy list (e.g. from a newer root config); links to dropped ones close."""
        self.config = replace(self.config, proxies=tuple(proxies))  # validates: never empty
        keep = set(self.config.proxies)
        for target in list(self._targets):
            if target.address not in keep:
                self._retire(target)
        self._publish()

    def reconnect_all(self, reason: str = "reconnecting for a new root config") -> None:
        """Drop every link now; they are re-dialled (the reference does this on a new
        ``params_version``)."""
        for session in self._sessions():
            session.close(reason)

    # ----------------------------------------------------------------- supervision
    async def _supervise(self) -> None:
        low, high = self._timers.tick
        while True:
            self._tick()
            await asyncio.sleep(random.uniform(low, high))  # noqa: S311 - jitter, not crypto

    def _tick(self) -> None:
        now = asyncio.get_running_loop().time()
        for target in self._targets:
            if target.session is not None and target.session.is_ready:
                target.last_ready = now
        self._replace_stale(now)
        spare = self._spare_proxies()
        while len(self._targets) < self.config.proxy_connections and spare:
            address = spare.pop(random.randrange(len(spare)))  # noqa: S311
            self._targets.append(_Target(address, last_ready=now, next_dial=now))
        for target in self._targets:
            if target.task is None and now >= target.next_dial:
                self._start_session(target)

    def _replace_stale(self, now: float) -> None:
        if not self._spare_proxies():
            return  # nothing to replace it with: keep re-dialling the same one
        for target in self._targets:
            if now - target.last_ready >= self._timers.replace_after:
                _log.info(
                    "proxy %s: not ready for %.0f s, choosing another",
                    target.address,
                    now - target.last_ready,
                )
                self._retire(target)
                return  # one per tick, like the reference

    def _retire(self, target: _Target) -> None:
        """Drop a target; its session ends in the background and ``aclose`` still waits for it."""
        self._targets.remove(target)
        if target.session is not None:
            target.session.close("replaced by another proxy")
        if target.task is not None:
            self._retired.add(target.task)
            target.task.add_done_callback(self._retired.discard)

    def _spare_proxies(self) -> list[ProxyAddress]:
        taken = {t.address for t in self._targets}
        return [p for p in self.config.proxies if p not in taken]

    def _start_session(self, target: _Target) -> None:
        session = ProxySession(
            target.address,
            config=self.config,
            server=self._server,
            payments=self.payments,
            ledger=self._ledger,
            dial=self._dial,
            enabled=self._enabled,
            coefficient=self._coefficient,
            timers=self._timers.session,
        )
        target.session = session

        def on_state(state: SessionState) -> None:
            target.last_state = state
            self._publish()

        session.state.subscribe(on_state, replay=True)
        target.task = asyncio.create_task(session.run(), name=f"proxy-session {target.address}")
        target.task.add_done_callback(lambda task: self._session_ended(target, task))

    def _session_ended(self, target: _Target, task: asyncio.Task[str]) -> None:
        target.task = None
        target.session = None
        loop = asyncio.get_running_loop() if self._running else None
        if loop is not None:
            target.next_dial = loop.time() + self._timers.redial_after
        if task.cancelled():
            return
        exc = task.exception()
        reason = f"session crashed: {exc!r}" if exc is not None else task.result()
        if exc is not None:
            _log.error("proxy %s: %s", target.address, reason, exc_info=exc)
        if self._running and not reason.startswith(_QUIET_REASONS):
            _log.warning("proxy %s: disconnected: %s", target.address, reason)
            self._last_error = f"{target.address}: {reason}"
        self._publish()

    def _sessions(self) -> list[ProxySession]:
        return [t.session for t in self._targets if t.session is not None]

    def _publish(self) -> None:
        states = tuple(t.last_state for t in self._targets if t.last_state is not None)
        ledger = self._ledger
        self.status.set(
            WorkerStatus(
                running=self._running,
                enabled=self._enabled,
                disabled_by=tuple(sorted(self._disabled_by)),
                coefficient=self._coefficient,
                connected_proxies=sum(1 for s in states if s.phase == "ready"),
                proxies=states,
                active_requests=ledger.active,
                served=ledger.served,
                failed=ledger.failed,
                tokens=ledger.tokens,
                last_error=self._last_error,
            )
        )
