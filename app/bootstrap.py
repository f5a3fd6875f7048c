"""Composition root: builds every service from the settings and wires them together.

Nothing else in the app constructs services; the CLI and the UI receive a ready :class:`Services`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from app.core.observable import Observable
from app.core.paths import AppPaths
from app.core.service import ServiceGroup
from app.core.settings import NetworkName
from app.core.settings_store import SettingsStore


@dataclass(frozen=True, slots=True)
class AppStatus:
    """The whole app's state in brief: the headless status line and the tray tooltip."""

    network: NetworkName
    started_at: float
    phase: str = "starting"

    def summary(self) -> str:
        uptime = int(time.monotonic() - self.started_at)
        return f"[{self.network}] {self.phase} · up {uptime // 60}m{uptime % 60:02d}s"


@dataclass(slots=True)
class Services:
    """Everything the front ends (CLI, UI) may use. Built by :func:`build_services` only."""

    paths: AppPaths
    settings: SettingsStore
    network: NetworkName
    group: ServiceGroup
    status: Observable[AppStatus] = field(
        default_factory=lambda: Observable(AppStatus(network="devnet", started_at=time.monotonic()))
    )

    async def start(self) -> None:
        await self.group.start()
        self.status.set(AppStatus(self.network, self.status.value.started_at, "running"))

    async def aclose(self) -> None:
        self.status.set(AppStatus(self.network, self.status.value.started_at, "stopping"))
        await self.group.aclose()
        self.status.set(AppStatus(self.network, self.status.value.started_at, "stopped"))

    def status_line(self) -> str:
        return self.status.value.summary()


def build_services(paths: AppPaths, settings: SettingsStore, network: NetworkName) -> Services:
    """Create (but do not start) the services for ``network``."""
    group = ServiceGroup([])
    services = Services(paths=paths, settings=settings, network=network, group=group)
    services.status.set(AppStatus(network=network, started_at=time.monotonic()))
    return services
