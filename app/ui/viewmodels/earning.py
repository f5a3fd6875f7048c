"""``EarningViewModel``: Start earning and Stop, the earning status, today's totals, recent jobs."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal

from app.core.errors import UserFacingError
from app.devnet.local_network import LocalNetwork, LocalNetworkStatus
from app.network.earning import EarningController, EarningStatus
from app.network.jobs import DayTotals, JobRecord, JobStore

_log = logging.getLogger(__name__)


class EarningViewModel(QObject):
    """Adapts the earning controller, the job store and the local network to Qt signals.

    Commands never raise for expected failures: the error text is returned (and the controller's
    status already says ``failed`` with the same message).
    """

    status_changed = Signal(object)  # EarningStatus
    network_changed = Signal(object)  # LocalNetworkStatus
    jobs_changed = Signal(object, object)  # list[JobRecord], DayTotals | None

    def __init__(
        self, earning: EarningController, jobs: JobStore, local: LocalNetwork | None = None
    ) -> None:
        super().__init__()
        self._earning = earning
        self._jobs = jobs
        self._local = local
        self._unsubscribers = [earning.status.subscribe(self.status_changed.emit)]
        if local is not None:
            self._unsubscribers.append(local.status.subscribe(self.network_changed.emit))

    @property
    def status(self) -> EarningStatus:
        return self._earning.status.value

    @property
    def local_network(self) -> LocalNetworkStatus | None:
        return self._local.status.value if self._local is not None else None

    async def start(self) -> str | None:
        try:
            await self._earning.start_earning()
        except UserFacingError as exc:
            return exc.describe()
        except OSError as exc:
            return str(exc)
        return None

    async def stop(self) -> None:
        await self._earning.stop_earning()

    async def load_jobs(self, limit: int = 50) -> tuple[list[JobRecord], DayTotals | None]:
        """Recent jobs and today's totals (UTC day, as the job store keeps them)."""
        await self._jobs.flush()
        recent = await self._jobs.recent(limit)
        today = await self._jobs.today_totals()
        self.jobs_changed.emit(recent, today)
        return recent, today

    def close(self) -> None:
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()
