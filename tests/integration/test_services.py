"""The composition root: saved settings reach the running services without a restart."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from app.core.settings import Settings
from tests.polling import eventually
from tests.service_builder import build_test_services


async def test_saved_caps_and_price_apply_while_running(tmp_path: Path) -> None:
    services = build_test_services(tmp_path)
    await services.start()
    try:
        assert services.guard.config.temperature_cap_c == 80

        def change(settings: Settings) -> Settings:
            engine = dataclasses.replace(
                settings.engine, temperature_cap_c=70, electricity_price_nanoton_per_kwh=123
            )
            return dataclasses.replace(settings, engine=engine)

        services.settings.update(change)
        await eventually(lambda: services.guard.config.temperature_cap_c == 70)
        assert services.energy.totals.value.price_nanoton_per_kwh == 123
    finally:
        await services.aclose()
