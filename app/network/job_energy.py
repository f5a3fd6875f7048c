"""``MeteredJobs``: the energy meter as the request server's :class:`JobObserver`.

Each job is metered from start to finish and what it earned is added to the meter's totals, so
TON per kWh and net profit follow the jobs actually served.
"""

from __future__ import annotations

from app.core.money import Nanoton
from app.engine.energy import EnergyMeter


class MeteredJobs:
    """Adapts :class:`EnergyMeter` to :class:`app.network.request_server.JobObserver`."""

    def __init__(self, meter: EnergyMeter) -> None:
        self.meter = meter

    def job_started(self, job_key: str, /) -> None:
        self.meter.job_started(job_key)

    def job_finished(self, job_key: str, earned_nanotons: Nanoton, /) -> float | None:
        """Energy of the job in Wh (None when no GPU reading measured it).

        The earnings are added to the meter's totals even if the key was not being metered.
        """
        return self.meter.finish_job(job_key, earned_nanotons=earned_nanotons)
