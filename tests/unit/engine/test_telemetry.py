"""``GpuTelemetry`` over a fake ``pynvml``: readings, unsupported metrics, lost and hung GPUs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from app.engine.gpu_sample import THROTTLE_REASON_LABELS, ProcessVram, decode_throttle_reasons
from app.engine.telemetry import GpuCallError, GpuTelemetry, TelemetrySnapshot
from tests.fakes.fake_pynvml import FakeGpu, FakeNvml, real

# Long enough for an ordinary call on a loaded 2-core machine, short enough to keep tests quick.
HANG_TIMEOUT = 0.5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeNvml]:
    nvml = FakeNvml(2)
    yield nvml
    nvml.release()  # never leave a scripted hang blocking a thread


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def telemetry(fake: FakeNvml, clock: Clock) -> AsyncIterator[GpuTelemetry]:
    # Generous: a call that merely waits for a busy CPU must never look hung. Tests that script
    # a hang build their own service with a short timeout.
    service = GpuTelemetry(fake.module, call_timeout=10, clock=clock, reinit_interval=30)
    yield service
    fake.release()
    await service.aclose()


async def _until(condition: Callable[[], bool]) -> None:
    """Let daemon threads finish (bounded; this waits for an event, it does not time anything)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never became true")


async def test_a_round_reads_every_metric(fake: FakeNvml, telemetry: GpuTelemetry) -> None:
    gpu = fake.gpus[0]
    gpu.temperature_c, gpu.fan_percent, gpu.power_mw = 71, 55, 312_500
    gpu.utilization = (97, 40)
    gpu.throttle_reasons = 0x4 | 0x20
    gpu.processes = [(4242, 6 * 1024**3), (77, None)]

    snapshot = await telemetry.sample_once()

    assert snapshot.state == "ok"
    assert snapshot.message == "Watching 2 GPUs."
    reading = snapshot.gpus[0]
    assert (reading.index, reading.name, reading.uuid) == (0, gpu.name, gpu.uuid)
    sample = reading.sample
    assert sample is not None
    assert sample.taken_at == 1000.0
    assert (sample.temperature_c, sample.fan_percent) == (71, 55)
    assert sample.power_mw == 312_500
    assert sample.power_w == 312.5
    assert sample.power_limit_mw == 450_000
    assert (sample.gpu_util_percent, sample.memory_util_percent) == (97, 40)
    assert (sample.graphics_clock_mhz, sample.sm_clock_mhz, sample.memory_clock_mhz) == (
        2520,
        2520,
        10501,
    )
    assert sample.throttle_reasons == ("sw_power_cap", "sw_thermal_slowdown")
    assert sample.energy_mj == 1_000_000
    assert (sample.vram_used_bytes, sample.vram_total_bytes) == (512 * 1024**2, 24 * 1024**3)
    assert sample.processes == (ProcessVram(4242, 6 * 1024**3), ProcessVram(77, None))
    assert telemetry.snapshot.value == snapshot


def test_throttle_reasons_decode_known_and_unknown_bits() -> None:
    assert decode_throttle_reasons(0) == ()
    assert decode_throttle_reasons(0x1 | 0x40 | 0x80) == (
        "gpu_idle",
        "hw_thermal_slowdown",
        "hw_power_brake_slowdown",
    )
    assert decode_throttle_reasons(0x8 | 0x1000) == ("hw_slowdown", "0x1000")
    assert set(THROTTLE_REASON_LABELS) == {
        name for bit in range(9) for name in decode_throttle_reasons(1 << bit)
    }


async def test_unsupported_metrics_are_none_not_errors(clock: Clock) -> None:
    gpu = FakeGpu(
        unsupported={
            "nvmlDeviceGetFanSpeed",
            "nvmlDeviceGetTotalEnergyConsumption",
            "nvmlDeviceGetComputeRunningProcesses",
            "nvmlDeviceGetCurrentClocksEventReasons",
            "nvmlDeviceGetUtilizationRates",
        }
    )
    gpu.throttle_reasons = 0x1
    fake = FakeNvml([gpu])
    fake.fail("nvmlDeviceGetEnforcedPowerLimit", real.NVML_ERROR_NO_PERMISSION)
    telemetry = GpuTelemetry(fake.module, clock=clock)

    snapshot = await telemetry.sample_once()

    assert snapshot.state == "ok"
    sample = snapshot.gpus[0].sample
    assert sample is not None
    assert sample.fan_percent is None
    assert sample.energy_mj is None
    assert sample.processes is None
    assert sample.power_limit_mw is None
    assert (sample.gpu_util_percent, sample.memory_util_percent) == (None, None)
    assert sample.throttle_reasons == ("gpu_idle",), "falls back to the pre-535 function"
    assert sample.temperature_c == 45
    await telemetry.aclose()


async def test_a_binding_without_a_function_reads_none(fake: FakeNvml, clock: Clock) -> None:
    del fake.module.nvmlDeviceGetTotalEnergyConsumption
    telemetry = GpuTelemetry(fake.module, clock=clock)

    snapshot = await telemetry.sample_once()

    assert snapshot.gpus[0].sample is not None
    assert snapshot.gpus[0].sample.energy_mj is None
    await telemetry.aclose()


async def test_history_keeps_the_newest_points(fake: FakeNvml, clock: Clock) -> None:
    telemetry = GpuTelemetry(fake.module, clock=clock, history_len=3)
    for temperature in (50, 51, 52, 53, 54):
        fake.gpus[0].temperature_c = temperature
        clock.now += 1
        await telemetry.sample_once()

    history = telemetry.history(0)

    assert [p.temperature_c for p in history] == [52, 53, 54]
    assert [p.t for p in history] == [1003.0, 1004.0, 1005.0]
    assert history[-1].power_mw == 60_000
    assert telemetry.history(7) == ()
    await telemetry.aclose()


async def test_default_history_covers_an_hour(fake: FakeNvml) -> None:
    telemetry = GpuTelemetry(fake.module)
    await telemetry.sample_once()

    assert telemetry._history[0].maxlen == 3600
    await telemetry.aclose()


async def test_without_nvml_the_state_says_so() -> None:
    telemetry = GpuTelemetry(None)

    snapshot = await telemetry.sample_once()

    assert snapshot.state == "nvml_missing"
    assert snapshot.gpus == ()
    await telemetry.aclose()


@pytest.mark.parametrize(
    ("fake_args", "state"),
    [
        ({"library_missing": True}, "nvml_missing"),
        ({"init_error": real.NVML_ERROR_DRIVER_NOT_LOADED}, "driver_not_loaded"),
        ({"init_error": real.NVML_ERROR_UNKNOWN}, "error"),
        ({"gpus": []}, "no_gpu"),
    ],
)
async def test_start_up_failures_are_states(fake_args: dict[str, object], state: str) -> None:
    fake = FakeNvml(**fake_args)  # type: ignore[arg-type]
    telemetry = GpuTelemetry(fake.module)

    snapshot = await telemetry.sample_once()

    assert snapshot.state == state
    assert snapshot.message
    assert fake.initialised == 0
    await telemetry.aclose()


async def test_a_driver_that_loads_later_is_picked_up(clock: Clock) -> None:
    fake = FakeNvml(1, init_error=real.NVML_ERROR_DRIVER_NOT_LOADED)
    telemetry = GpuTelemetry(fake.module, clock=clock, reinit_interval=30)
    assert (await telemetry.sample_once()).state == "driver_not_loaded"

    fake.init_error = None
    clock.now += 10
    assert (await telemetry.sample_once()).state == "driver_not_loaded", "waits before retrying"
    assert fake.count("nvmlInit") == 1
    clock.now += 25

    assert (await telemetry.sample_once()).state == "ok"
    await telemetry.aclose()
    assert fake.initialised == 0


async def test_only_the_selected_gpus_are_sampled(fake: FakeNvml, clock: Clock) -> None:
    telemetry = GpuTelemetry(fake.module, indices=(1,), clock=clock)

    snapshot = await telemetry.sample_once()

    assert [r.index for r in snapshot.gpus] == [1]
    assert fake.count("nvmlDeviceGetTemperature", gpu=0) == 0
    await telemetry.aclose()


@pytest.mark.allow_log_warnings
async def test_a_gpu_lost_mid_run(fake: FakeNvml, telemetry: GpuTelemetry) -> None:
    await telemetry.sample_once()
    fake.lose(1)

    snapshot = await telemetry.sample_once()

    assert snapshot.state == "degraded"
    lost = snapshot.gpus[1]
    assert lost.status == "lost"
    assert "restart the computer" in lost.message
    assert lost.sample is not None, "the last good sample is kept for the UI"
    calls = fake.count("nvmlDeviceGetTemperature", gpu=1)
    again = await telemetry.sample_once()
    assert fake.count("nvmlDeviceGetTemperature", gpu=1) == calls, "a lost GPU is left alone"
    assert again.gpus[0].status == "ok"


@pytest.mark.allow_log_warnings
async def test_the_only_gpu_lost_is_an_error_state(clock: Clock) -> None:
    fake = FakeNvml(1)
    telemetry = GpuTelemetry(fake.module, clock=clock)
    await telemetry.sample_once()
    fake.lose(0)

    snapshot = await telemetry.sample_once()

    assert snapshot.state == "error"
    assert "GPU 0 stopped responding" in snapshot.message
    await telemetry.aclose()


async def test_a_gpu_lost_before_start(clock: Clock) -> None:
    fake = FakeNvml(2)
    fake.lose(0)
    telemetry = GpuTelemetry(fake.module, clock=clock)

    snapshot = await telemetry.sample_once()

    assert [r.status for r in snapshot.gpus] == ["lost", "ok"]
    assert snapshot.state == "degraded"
    await telemetry.aclose()


async def test_an_nvml_error_mid_sample_is_one_bad_round(
    fake: FakeNvml, telemetry: GpuTelemetry
) -> None:
    first = await telemetry.sample_once()
    fake.fail("nvmlDeviceGetPowerUsage", real.NVML_ERROR_UNKNOWN, gpu=0, nth=2)

    bad = await telemetry.sample_once()

    assert bad.state == "degraded"
    assert bad.gpus[0].status == "error"
    assert "Unknown Error" in bad.gpus[0].message
    assert bad.gpus[0].sample == first.gpus[0].sample, "the last good sample stays"
    assert (await telemetry.sample_once()).state == "ok"


async def test_the_driver_going_away_mid_run_reopens_later(
    fake: FakeNvml, telemetry: GpuTelemetry, clock: Clock
) -> None:
    await telemetry.sample_once()
    fake.fail("nvmlDeviceGetTemperature", real.NVML_ERROR_DRIVER_NOT_LOADED, gpu=0, nth=2)

    broken = await telemetry.sample_once()

    assert broken.state == "driver_not_loaded"
    clock.now += 31
    assert (await telemetry.sample_once()).state == "ok"
    await telemetry.aclose()
    assert fake.initialised == 0, "the broken session's init was released too"


async def test_a_hung_call_is_reported_and_not_repeated(fake: FakeNvml, clock: Clock) -> None:
    telemetry = GpuTelemetry(fake.module, call_timeout=HANG_TIMEOUT, clock=clock)
    await telemetry.sample_once()
    fake.hang("nvmlDeviceGetTemperature", gpu=0, nth=2)

    hung = await telemetry.sample_once()

    assert hung.state == "degraded"
    assert hung.gpus[0].status == "hung"
    assert "did not answer" in hung.gpus[0].message
    assert hung.gpus[1].status == "ok", "other GPUs keep being sampled"
    busy = await telemetry.sample_once()
    assert busy.gpus[0].status == "hung"
    assert "still busy" in busy.gpus[0].message
    assert fake.count("nvmlDeviceGetTemperature", gpu=0) == 2, "one call in flight per GPU"

    fake.release()
    await _until(lambda: all(f.done() for f in telemetry._inflight.values()))
    assert (await telemetry.sample_once()).state == "ok"
    await telemetry.aclose()


async def test_a_hung_init_is_an_error_state(fake: FakeNvml, clock: Clock) -> None:
    fake.hang("nvmlInit")
    telemetry = GpuTelemetry(fake.module, call_timeout=0.05, clock=clock)

    snapshot = await telemetry.sample_once()

    assert snapshot.state == "error"
    assert "did not answer" in snapshot.message
    fake.release()
    await telemetry.aclose()


async def test_the_service_loop_publishes_and_closes(fake: FakeNvml) -> None:
    telemetry = GpuTelemetry(fake.module, interval=0.01)
    seen: list[TelemetrySnapshot] = []
    two_rounds = asyncio.Event()

    def on_snapshot(snapshot: TelemetrySnapshot) -> None:
        seen.append(snapshot)
        if sum(1 for s in seen if s.state == "ok") >= 2:
            two_rounds.set()

    telemetry.snapshot.subscribe(on_snapshot)
    await telemetry.start()
    await telemetry.start()  # a second start is a no-op
    await asyncio.wait_for(two_rounds.wait(), 10)
    await telemetry.aclose()
    await telemetry.aclose()

    assert seen[0].state == "starting"
    assert telemetry.snapshot.value.state == "stopped"
    assert fake.initialised == 0, "NVML is shut down on close"


async def test_closing_with_a_call_stuck_in_the_driver_does_not_wait(fake: FakeNvml) -> None:
    telemetry = GpuTelemetry(fake.module, call_timeout=HANG_TIMEOUT)
    await telemetry.sample_once()
    fake.hang("nvmlDeviceGetTemperature", gpu=0, nth=2)
    await telemetry.sample_once()

    await telemetry.aclose()

    assert telemetry.snapshot.value.state == "stopped"
    assert fake.count("nvmlShutdown") == 0, "no shutdown under a call still in the driver"


async def test_call_runs_a_function_on_a_gpu(fake: FakeNvml, telemetry: GpuTelemetry) -> None:
    with pytest.raises(GpuCallError) as before:
        await telemetry.call(0, lambda nvml, h: nvml.nvmlDeviceGetPowerManagementLimit(h))
    assert before.value.kind == "unavailable"
    await telemetry.sample_once()

    limit = await telemetry.call(0, lambda nvml, h: nvml.nvmlDeviceGetPowerManagementLimit(h))

    assert limit == 450_000


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (real.NVML_ERROR_NO_PERMISSION, "no_permission"),
        (real.NVML_ERROR_NOT_SUPPORTED, "unsupported"),
        (real.NVML_ERROR_GPU_IS_LOST, "lost"),
        (real.NVML_ERROR_UNKNOWN, "failed"),
    ],
)
async def test_call_errors_are_typed(
    fake: FakeNvml, telemetry: GpuTelemetry, code: int, kind: str
) -> None:
    await telemetry.sample_once()
    fake.fail("nvmlDeviceSetPowerManagementLimit", code)

    with pytest.raises(GpuCallError) as error:
        await telemetry.call(0, lambda nvml, h: nvml.nvmlDeviceSetPowerManagementLimit(h, 300_000))

    assert error.value.kind == kind
    assert "GPU 0" in error.value.message


@pytest.mark.allow_log_warnings
async def test_call_on_a_lost_gpu(fake: FakeNvml, telemetry: GpuTelemetry) -> None:
    await telemetry.sample_once()
    fake.lose(0)
    await telemetry.sample_once()

    with pytest.raises(GpuCallError) as error:
        await telemetry.call(0, lambda nvml, h: nvml.nvmlDeviceGetPowerUsage(h))

    assert error.value.kind == "lost"


@pytest.mark.parametrize(
    "kwargs",
    [{"interval": 0}, {"call_timeout": -1}, {"history_len": 0}, {"reinit_interval": -1}],
)
def test_bad_settings_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        GpuTelemetry(None, **kwargs)  # type: ignore[arg-type]


async def test_closing_after_the_driver_went_away_releases_nvml(
    fake: FakeNvml, telemetry: GpuTelemetry
) -> None:
    await telemetry.sample_once()
    fake.fail("nvmlDeviceGetTemperature", real.NVML_ERROR_DRIVER_NOT_LOADED, gpu=0, nth=2)
    assert (await telemetry.sample_once()).state == "driver_not_loaded"

    await telemetry.aclose()

    assert fake.initialised == 0
    assert telemetry.snapshot.value.state == "stopped"
