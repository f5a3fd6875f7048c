"""``ThermalGuard`` over real telemetry and a fake ``pynvml``: caps, hysteresis, power control."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from app.core.settings import EngineSettings
from app.engine.guard import GuardConfig, GuardConfigError, GuardState, ThermalGuard
from app.engine.telemetry import GpuTelemetry
from tests.fakes.fake_pynvml import FakeNvml, real


@pytest.fixture
def fake() -> Iterator[FakeNvml]:
    nvml = FakeNvml(1)
    yield nvml
    nvml.release()


@pytest.fixture
async def telemetry(fake: FakeNvml) -> AsyncIterator[GpuTelemetry]:
    service = GpuTelemetry(fake.module, call_timeout=10)  # only the hang test wants it short
    yield service
    fake.release()
    await service.aclose()


async def _guard(
    telemetry: GpuTelemetry, config: GuardConfig | None = None, **kwargs: float
) -> ThermalGuard:
    guard = ThermalGuard(telemetry, config, retry_delay=0, **kwargs)  # type: ignore[arg-type]
    await guard.start()
    return guard


async def _at(
    fake: FakeNvml, telemetry: GpuTelemetry, *, temp: int | None = None, watts: int | None = None
) -> None:
    if temp is not None:
        fake.gpus[0].temperature_c = temp
    if watts is not None:
        fake.gpus[0].power_mw = watts * 1000
    await telemetry.sample_once()


def _state(guard: ThermalGuard) -> GuardState:
    # A function, not the attribute chain: mypy would narrow the chain across awaits.
    return guard.state.value


def _accepting(guard: ThermalGuard) -> bool:
    return _state(guard).accepting


async def _settle(guard: ThermalGuard) -> None:
    """Wait for the guard's power-control task, if one is running."""
    task = guard._power_task
    if task is not None:
        await task


async def _sample(telemetry: GpuTelemetry, guard: ThermalGuard) -> None:
    """One telemetry reading, and whatever power limit change it made the guard start."""
    await telemetry.sample_once()
    await _settle(guard)


async def _power_guard(telemetry: GpuTelemetry, cap_w: int = 300) -> ThermalGuard:
    """A started guard allowed to lower the power limit to ``cap_w``."""
    return await _guard(telemetry, GuardConfig(power_cap_w=cap_w, allow_power_control=True))


async def test_temperature_cap_with_hysteresis(fake: FakeNvml, telemetry: GpuTelemetry) -> None:
    guard = await _guard(telemetry)
    assert _accepting(guard)
    assert _state(guard).reason == "Waiting for GPU temperatures."

    await _at(fake, telemetry, temp=80)
    assert _accepting(guard), "at the cap is not above it"
    assert _state(guard).reason == "GPUs are within your limits (80 °C)."

    await _at(fake, telemetry, temp=81)
    state = _state(guard)
    assert not state.accepting
    assert state.paused_gpus == (0,)
    assert "GPU 0 is at 81 °C, above your 80 °C limit" in state.reason
    assert "below 75 °C" in state.reason

    for temp in (79, 76, 75):
        await _at(fake, telemetry, temp=temp)
        assert not _accepting(guard), f"still cooling at {temp} °C"
    await _at(fake, telemetry, temp=74)
    assert _accepting(guard)
    await guard.aclose()


async def test_power_cap_with_hysteresis(fake: FakeNvml, telemetry: GpuTelemetry) -> None:
    guard = await _guard(telemetry, GuardConfig(power_cap_w=300))

    await _at(fake, telemetry, watts=300)
    assert _accepting(guard)
    await _at(fake, telemetry, watts=310)
    assert not _accepting(guard)
    assert "draws 310 W, above your 300 W limit" in _state(guard).reason
    await _at(fake, telemetry, watts=275)
    assert not _accepting(guard), "resumes only below 270 W (10 % under the cap)"
    await _at(fake, telemetry, watts=269)
    assert _accepting(guard)
    assert _state(guard).reason == "GPUs are within your limits (80 °C, 300 W)."
    assert fake.count("nvmlDeviceSetPowerManagementLimit") == 0
    await guard.aclose()


async def test_without_opt_in_it_never_changes_the_power_limit(
    fake: FakeNvml, telemetry: GpuTelemetry
) -> None:
    guard = await _guard(telemetry, GuardConfig(power_cap_w=200, allow_power_control=False))
    for watts in (420, 150):
        await _at(fake, telemetry, watts=watts)
    await guard.aclose()

    setters = [name for name, _ in fake.calls if "Set" in name]
    assert setters == []
    assert fake.gpus[0].power_limit_mw == 450_000


async def test_unreported_temperature_does_not_pause(
    fake: FakeNvml, telemetry: GpuTelemetry
) -> None:
    fake.gpus[0].unsupported.add("nvmlDeviceGetTemperature")
    guard = await _guard(telemetry)

    await telemetry.sample_once()

    assert _accepting(guard)
    await guard.aclose()


@pytest.mark.allow_log_warnings
async def test_a_lost_gpu_pauses(fake: FakeNvml, telemetry: GpuTelemetry) -> None:
    guard = await _guard(telemetry)
    await telemetry.sample_once()
    fake.lose(0)

    await telemetry.sample_once()

    assert not _accepting(guard)
    assert _state(guard).reason == "GPU 0 is lost."
    await guard.aclose()


@pytest.mark.parametrize("temp", [90, 60])
async def test_a_hung_reading_keeps_the_last_decision(fake: FakeNvml, temp: int) -> None:
    telemetry = GpuTelemetry(fake.module, call_timeout=0.5)
    guard = await _guard(telemetry)
    await _at(fake, telemetry, temp=temp)
    before = _accepting(guard)
    fake.hang("nvmlDeviceGetTemperature", gpu=0, nth=fake.count("nvmlDeviceGetTemperature") + 1)
    fake.gpus[0].temperature_c = 120 if before else 20

    snapshot = await telemetry.sample_once()

    assert snapshot.gpus[0].status == "hung"
    assert _accepting(guard) is before
    fake.release()
    await guard.aclose()
    await telemetry.aclose()


@pytest.mark.parametrize(
    "fake_nvml",
    [
        FakeNvml([]),
        FakeNvml(library_missing=True),
        FakeNvml(init_error=real.NVML_ERROR_DRIVER_NOT_LOADED),
    ],
)
async def test_cpu_only_accepts(fake_nvml: FakeNvml) -> None:
    telemetry = GpuTelemetry(fake_nvml.module)
    guard = await _guard(telemetry)

    await telemetry.sample_once()

    assert _accepting(guard)
    assert "CPU only" in _state(guard).reason
    await guard.aclose()
    await telemetry.aclose()


async def test_opted_in_power_control_lowers_and_restores(
    fake: FakeNvml, telemetry: GpuTelemetry
) -> None:
    guard = await _power_guard(telemetry)

    await _sample(telemetry, guard)

    assert fake.gpus[0].power_limit_mw == 300_000
    assert _state(guard).power_limits_set == ((0, 300_000),)
    await _sample(telemetry, guard)
    assert fake.set_power_limits == [(0, 300_000)], "applied once"

    await guard.aclose()

    assert fake.gpus[0].power_limit_mw == 450_000
    assert fake.set_power_limits == [(0, 300_000), (0, 450_000)]
    assert _state(guard).power_limits_set == ()
    await guard.aclose()
    assert len(fake.set_power_limits) == 2, "closing twice restores once"


async def test_the_cap_is_clamped_to_what_the_gpu_allows(
    fake: FakeNvml, telemetry: GpuTelemetry
) -> None:
    guard = await _power_guard(telemetry, 100)

    await _sample(telemetry, guard)

    assert fake.gpus[0].power_limit_mw == 150_000
    await guard.aclose()
    assert fake.gpus[0].power_limit_mw == 450_000


async def test_a_limit_already_below_the_cap_is_left_alone(
    fake: FakeNvml, telemetry: GpuTelemetry
) -> None:
    fake.gpus[0].power_limit_mw = 250_000
    guard = await _power_guard(telemetry)

    await _sample(telemetry, guard)
    await guard.aclose()

    assert fake.set_power_limits == []
    assert fake.gpus[0].power_limit_mw == 250_000


@pytest.mark.allow_log_warnings
async def test_missing_rights_become_a_notice(fake: FakeNvml, telemetry: GpuTelemetry) -> None:
    fake.fail("nvmlDeviceSetPowerManagementLimit", real.NVML_ERROR_NO_PERMISSION)
    guard = await _power_guard(telemetry)

    await _sample(telemetry, guard)

    state = _state(guard)
    assert "needs administrator rights" in state.notice
    assert state.power_limits_set == ()
    assert state.accepting
    await guard.aclose()
    assert fake.gpus[0].power_limit_mw == 450_000


@pytest.mark.allow_log_warnings
async def test_restore_retries_after_an_nvml_error(fake: FakeNvml, telemetry: GpuTelemetry) -> None:
    guard = await _power_guard(telemetry)
    await _sample(telemetry, guard)
    fake.fail("nvmlDeviceSetPowerManagementLimit", real.NVML_ERROR_UNKNOWN, nth=2)

    await guard.aclose()

    assert fake.count("nvmlDeviceSetPowerManagementLimit") == 3
    assert fake.gpus[0].power_limit_mw == 450_000
    assert _state(guard).notice == ""


@pytest.mark.allow_log_warnings
async def test_restore_after_nvml_errors_during_the_run(
    fake: FakeNvml, telemetry: GpuTelemetry
) -> None:
    guard = await _power_guard(telemetry)
    await _sample(telemetry, guard)
    fake.fail("nvmlDeviceGetPowerUsage", real.NVML_ERROR_UNKNOWN, nth=2, times=2)
    await telemetry.sample_once()
    await telemetry.sample_once()
    assert telemetry.snapshot.value.state == "error"

    await guard.aclose()

    assert fake.gpus[0].power_limit_mw == 450_000


@pytest.mark.allow_log_warnings
async def test_a_restore_that_keeps_failing_says_what_to_do(
    fake: FakeNvml, telemetry: GpuTelemetry
) -> None:
    guard = await _power_guard(telemetry)
    await _sample(telemetry, guard)
    fake.fail("nvmlDeviceSetPowerManagementLimit", real.NVML_ERROR_UNKNOWN, nth=2, times=3)

    await guard.aclose()

    notice = _state(guard).notice
    assert "Could not restore GPU 0's power limit to 450 W" in notice
    assert "Restarting the computer restores it" in notice
    assert _state(guard).power_limits_set == ((0, 300_000),)


async def test_turning_power_control_off_restores_at_once(
    fake: FakeNvml, telemetry: GpuTelemetry
) -> None:
    guard = await _power_guard(telemetry)
    await _sample(telemetry, guard)

    await guard.reconfigure(GuardConfig(power_cap_w=300, allow_power_control=False))

    assert fake.gpus[0].power_limit_mw == 450_000
    await _sample(telemetry, guard)
    assert fake.set_power_limits == [(0, 300_000), (0, 450_000)]
    await guard.reconfigure(GuardConfig(power_cap_w=250, allow_power_control=True))
    await _sample(telemetry, guard)
    assert fake.gpus[0].power_limit_mw == 250_000
    await guard.aclose()
    assert fake.gpus[0].power_limit_mw == 450_000


async def test_raising_the_cap_applies_at_once(fake: FakeNvml, telemetry: GpuTelemetry) -> None:
    guard = await _guard(telemetry)
    await _at(fake, telemetry, temp=83)
    assert not _accepting(guard)

    await guard.reconfigure(GuardConfig(temperature_cap_c=85))

    assert _accepting(guard)
    assert guard.config.temperature_cap_c == 85
    await guard.reconfigure(GuardConfig(temperature_cap_c=70))
    assert not _accepting(guard)
    await guard.aclose()


async def test_the_service_loop_drives_the_guard(fake: FakeNvml) -> None:
    fake.gpus[0].temperature_c = 95
    telemetry = GpuTelemetry(fake.module, interval=0.01)
    guard = ThermalGuard(telemetry)
    paused = asyncio.Event()
    guard.state.subscribe(lambda s: paused.set() if not s.accepting else None)
    await telemetry.start()
    await guard.start()

    await asyncio.wait_for(paused.wait(), 10)

    await guard.aclose()
    await telemetry.aclose()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: GuardConfig(temperature_cap_c=49), "outside the safe range"),
        (lambda: GuardConfig(temperature_cap_c=101), "outside the safe range"),
        (lambda: GuardConfig(temperature_cap_c=True), "whole number"),
        (lambda: GuardConfig(temperature_cap_c=80.5), "whole number"),  # type: ignore[arg-type]
        (lambda: GuardConfig(power_cap_w=0), "cannot be used"),
        (lambda: GuardConfig(power_cap_w=-5), "cannot be used"),
        (lambda: GuardConfig(power_cap_w=2001), "cannot be used"),
        (lambda: GuardConfig(hysteresis_c=0), "hysteresis"),
        (lambda: GuardConfig(power_hysteresis_percent=60), "hysteresis"),
    ],
)
def test_bad_caps_get_clear_errors(make: Callable[[], GuardConfig], words: str) -> None:
    with pytest.raises(GuardConfigError, match=words) as error:
        make()
    assert error.value.message


async def test_bad_reconfigure_keeps_the_old_config(telemetry: GpuTelemetry) -> None:
    guard = await _guard(telemetry, GuardConfig(temperature_cap_c=75))

    with pytest.raises(GuardConfigError):
        await guard.reconfigure(GuardConfig(temperature_cap_c=20))

    assert guard.config.temperature_cap_c == 75
    await guard.aclose()


def test_config_from_settings() -> None:
    config = GuardConfig.from_settings(EngineSettings())
    assert config == GuardConfig(temperature_cap_c=80, power_cap_w=None, allow_power_control=False)

    custom = EngineSettings(temperature_cap_c=70, power_cap_w=250, allow_power_control=True)
    assert GuardConfig.from_settings(custom).controls_power
    assert GuardConfig.from_settings(custom).power_cap_w == 250


async def test_a_restarted_guard_applies_the_cap_again(
    fake: FakeNvml, telemetry: GpuTelemetry
) -> None:
    guard = await _power_guard(telemetry)
    await _sample(telemetry, guard)
    await guard.aclose()
    assert fake.gpus[0].power_limit_mw == 450_000

    await guard.start()
    await _sample(telemetry, guard)

    assert fake.gpus[0].power_limit_mw == 300_000
    await guard.aclose()
    assert fake.gpus[0].power_limit_mw == 450_000
