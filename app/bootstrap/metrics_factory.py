"""Building the optional ``/metrics`` endpoint over the services' published state (kept out of
``services.py``: it only reads what the other services publish)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.core.settings import GeneralSettings
from app.network.earning import EarningController
from app.network.metrics import MetricsServer
from app.network.metrics_auth import read_metrics_token
from app.network.metrics_snapshot import MetricsSnapshot, snapshot_of

if TYPE_CHECKING:
    from app.bootstrap.services import Services


def metrics_server(
    general: GeneralSettings, earning: EarningController, services: Callable[[], Services]
) -> MetricsServer:
    """The ``/metrics`` and ``/status.json`` endpoint over the services' published state (its
    counters follow every change of the earning status)."""

    def snapshot() -> MetricsSnapshot:
        s = services()
        money = s.status.value.earnings
        return snapshot_of(
            s.earning.status.value,
            s.telemetry.snapshot.value,
            earned_nanotons=money.earned_nanoton,
            vouchered_nanotons=money.vouchered_nanoton,
            paid_nanotons=money.paid_nanoton,
        )

    def status() -> dict[str, Any]:
        s = services()
        now = s.status.value
        return {
            "network": s.network,
            "phase": now.phase,
            "earning": now.earning.phase,
            "summary": now.summary(),
            "pipeline": s.pipeline().to_json(),
        }

    return MetricsServer(
        snapshot,
        port=general.metrics_port,
        bind=general.metrics_bind,
        token=read_metrics_token,
        status=status,
        watch=(earning.status,),
    )
