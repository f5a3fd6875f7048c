"""``EarningViewModel.load_jobs``: recent jobs and today's UTC totals from the real job store."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from app.ui.viewmodels.earning import EarningViewModel
from tests.service_builder import build_test_services
from tests.unit.network.test_jobs import record


async def test_today_is_todays_utc_day_even_with_yesterdays_jobs_in_the_window(
    tmp_path: Path,
) -> None:
    services = build_test_services(tmp_path)
    await services.jobs.start()
    vm = EarningViewModel(services.earning, services.jobs)
    try:
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        services.jobs.add(record(1, finished_at=midnight.timestamp() - 1))  # yesterday, 23:59:59
        services.jobs.add(record(2))
        services.jobs.add(record(3))
        recent, today = await vm.load_jobs()
        assert len(recent) == 3
        assert today is not None
        assert today.day == time.strftime("%Y-%m-%d", time.gmtime())
        assert today.jobs == 2
    finally:
        vm.close()
        await services.jobs.aclose()


async def test_no_jobs_today_means_no_totals(tmp_path: Path) -> None:
    services = build_test_services(tmp_path)
    await services.jobs.start()
    vm = EarningViewModel(services.earning, services.jobs)
    try:
        assert await vm.load_jobs() == ([], None)
    finally:
        vm.close()
        await services.jobs.aclose()
