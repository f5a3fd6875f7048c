"""Composition root: builds every service from the settings and wires them together.

Nothing else in the app constructs services; the CLI and the UI receive a ready :class:`Services`.
Tests and the headless CLI adjust the build through :class:`BuildOptions` (a fake NVML module, a
small engine program, settings overrides that are not saved).
"""

from app.bootstrap.factories import (
    build_cashout,
    build_job_store,
    build_local_network,
    build_payment_book,
    build_wallet_service,
    network_root,
    pipeline_snapshot,
    wallet_network,
)
from app.bootstrap.services import (
    AppStatus,
    BuildOptions,
    EarningsSummary,
    Services,
    build_services,
)

__all__ = [
    "AppStatus",
    "BuildOptions",
    "EarningsSummary",
    "Services",
    "build_cashout",
    "build_job_store",
    "build_local_network",
    "build_payment_book",
    "build_services",
    "build_wallet_service",
    "network_root",
    "pipeline_snapshot",
    "wallet_network",
]
