"""``GpuTelemetry``: samples every GPU through NVML off the event loop, publishes typed snapshots.

Owns the app's long-lived NVML session: the per-device "one call in flight" rule, the call
timeout, the per-GPU history ring buffers for charts, and turning driver trouble into states.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal, NamedTuple, TypeVar

from app.core.errors import UserFacingError
from app.core.observable import Observable
from app.engine.gpu_probe import (
    HINT_DRIVER_HUNG,
    HINT_NO_GPU,
    HINT_REINSTALL_NVML,
    describe_device_error,
    explain_nvml_error,
    is_unsupported,
    load_nvml,
    nvml_text,
    run_in_daemon_thread,
)
from app.engine.gpu_sample import GpuSample, read_sample

_log = logging.getLogger(__name__)

T = TypeVar("T")
TelemetryState = Literal[
    "starting", "ok", "degraded", "nvml_missing", "driver_not_loaded", "no_gpu", "error", "stopped"
]
DeviceStatus = Literal["ok", "hung", "lost", "error"]
CallFailure = Literal["unavailable", "lost", "hung", "unsupported", "no_permission", "failed"]

_MISSING: Any = object()
_SYSTEM = -1  # the in-flight key for session-wide calls (init, enumeration, shutdown)


class GpuCallError(UserFacingError):
    """An NVML call made through :meth:`GpuTelemetry.call` did not succeed; ``kind`` says why."""

    def __init__(self, message: str, *, kind: CallFailure, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU in a snapshot: its status and the latest good sample (older if status is not ok)."""

    index: int
    name: str
    uuid: str
    status: DeviceStatus
    message: str
    sample: GpuSample | None


@dataclass(frozen=True, slots=True)
class TelemetrySnapshot:
    """Everything the UI, the guard and the energy meter need from one sampling round."""

    state: TelemetryState
    message: str
    hint: str = ""
    gpus: tuple[GpuReading, ...] = ()
    taken_at: float | None = None


class HistoryPoint(NamedTuple):
    """A compact chart point (a tuple, so an hour of them per GPU stays small)."""

    t: float
    temperature_c: int | None
    power_mw: int | None
    gpu_util_percent: int | None
    vram_used_bytes: int | None
    fan_percent: int | None


@dataclass(slots=True)
class _Device:
    index: int
    handle: Any
    name: str
    uuid: str
    status: DeviceStatus = "ok"
    message: str = ""
    sample: GpuSample | None = None

    def reading(self) -> GpuReading:
        return GpuReading(self.index, self.name, self.uuid, self.status, self.message, self.sample)


class _NoAnswerError(Exception):
    def __init__(self, busy: bool) -> None:
        super().__init__("busy" if busy else "timeout")
        self.busy = busy


class GpuTelemetry:
    """Samples each GPU every ``interval`` seconds; :attr:`snapshot` publishes the results.

    Every NVML call runs in a daemon thread bounded by ``call_timeout``; a device whose previous
    call has not come back is reported ``hung`` and not called again until it does. ``indices``
    limits sampling to some GPUs (empty: all). ``clock`` stamps samples (monotonic seconds).
    """

    def __init__(
        self,
        nvml: ModuleType | None = _MISSING,
        *,
        interval: float = 1.0,
        call_timeout: float = 5.0,
        history_len: int = 3600,
        indices: tuple[int, ...] = (),
        reinit_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0 or call_timeout <= 0 or history_len < 1 or reinit_interval < 0:
            raise ValueError("interval, call_timeout and history_len must be positive")
        self._nvml = load_nvml() if nvml is _MISSING else nvml
        self._interval = interval
        self._call_timeout = call_timeout
        self._history_len = history_len
        self._indices = indices
        self._reinit_interval = reinit_interval
        self._clock = clock
        self._devices: list[_Device] | None = None
        self._next_init_at: float | None = None
        # An nvmlInit whose session broke (driver unloaded) still holds a reference in NVML.
        self._stale_init = False
        self._inflight: dict[int, asyncio.Future[Any]] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._history: dict[int, deque[HistoryPoint]] = {}
        self._task: asyncio.Task[None] | None = None
        self.snapshot: Observable[TelemetrySnapshot] = Observable(
            TelemetrySnapshot("stopped", "GPU monitoring is not running.")
        )

    @property
    def nvml(self) -> ModuleType | None:
        return self._nvml

    async def start(self) -> None:
        if self._task is not None:
            return
        self.snapshot.set(TelemetrySnapshot("starting", "Looking for NVIDIA GPUs…"))
        self._task = asyncio.create_task(self._run(), name="gpu-telemetry")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if (self._devices is not None or self._stale_init) and self._nvml is not None:
            self._devices, self._stale_init = None, False
            # Shutting NVML down under a call still stuck in the driver is not safe; leave it.
            if not any(not f.done() for f in self._inflight.values()):
                nvml = self._nvml
                with contextlib.suppress(Exception):
                    await self._call(_SYSTEM, nvml.nvmlShutdown)
        self.snapshot.set(TelemetrySnapshot("stopped", "GPU monitoring is not running."))

    def history(self, index: int) -> tuple[HistoryPoint, ...]:
        """The chart points kept for GPU ``index``, oldest first (at most ``history_len``)."""
        return tuple(self._history.get(index, ()))

    async def sample_once(self) -> TelemetrySnapshot:
        """Run one sampling round now (opening the NVML session if needed) and publish it."""
        if self._devices is None:
            now = self._clock()
            if self._next_init_at is None or now >= self._next_init_at:
                await self._open_session()
            if self._devices is None:
                return self.snapshot.value
        devices = self._devices
        await asyncio.gather(*(self._sample_device(d) for d in devices if d.status != "lost"))
        if self._devices is not devices:  # the session broke during the round
            return self.snapshot.value
        snapshot = self._summarise(devices)
        self.snapshot.set(snapshot)
        return snapshot

    async def call(self, index: int, function: Callable[[ModuleType, Any], T]) -> T:
        """Run ``function(nvml, handle)`` for GPU ``index`` under the in-flight rule and timeout.

        Raises :class:`GpuCallError` (never a raw NVML error). The guard changes power limits
        through this, so those calls never overlap a sample of the same GPU.
        """
        nvml = self._nvml
        device = next((d for d in self._devices or () if d.index == index), None)
        if nvml is None or device is None:
            raise GpuCallError(f"GPU {index} is not available.", kind="unavailable")
        if device.status == "lost":
            raise GpuCallError(
                describe_device_error(index, nvml.NVMLError_GpuIsLost(), nvml), kind="lost"
            )
        try:
            return await self._call(index, lambda: function(nvml, device.handle))
        except _NoAnswerError as exc:
            raise GpuCallError(
                f"GPU {index} did not answer in time.",
                kind="hung",
                hint="" if exc.busy else "The NVIDIA driver may be hung.",
            ) from None
        except nvml.NVMLError as exc:
            raise _call_error(index, exc, nvml) from None

    # -- internals ----------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.sample_once()
            except Exception:  # a bug must not end monitoring for the rest of the session
                _log.exception("GPU sampling round failed")
                self.snapshot.set(
                    TelemetrySnapshot(
                        "error", "GPU monitoring hit an internal error; see the log.", taken_at=None
                    )
                )
            await asyncio.sleep(max(0.0, self._interval - (loop.time() - started)))

    async def _call(self, key: int, function: Callable[[], T]) -> T:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            previous = self._inflight.get(key)
            if previous is not None and not previous.done():
                raise _NoAnswerError(busy=True)
            future = run_in_daemon_thread(function)
            future.add_done_callback(_retrieve)
            self._inflight[key] = future
            try:
                return await asyncio.wait_for(asyncio.shield(future), self._call_timeout)
            except TimeoutError:
                raise _NoAnswerError(busy=False) from None

    async def _open_session(self) -> None:
        self._next_init_at = self._clock() + self._reinit_interval
        nvml = self._nvml
        if nvml is None:
            self.snapshot.set(
                TelemetrySnapshot(
                    "nvml_missing",
                    "GPU monitoring is off: nvidia-ml-py is not installed.",
                    HINT_REINSTALL_NVML,
                )
            )
            self._next_init_at = float("inf")
            return
        try:
            devices = await self._call(_SYSTEM, lambda: self._enumerate(nvml))
        except _NoAnswerError:
            self.snapshot.set(
                TelemetrySnapshot(
                    "error",
                    "The NVIDIA driver did not answer.",
                    HINT_DRIVER_HUNG,
                )
            )
            return
        except nvml.NVMLError as exc:
            state, message, hint = explain_nvml_error(exc, nvml)
            self.snapshot.set(TelemetrySnapshot(state, message, hint))
            return
        if not devices:
            self.snapshot.set(
                TelemetrySnapshot(
                    "no_gpu",
                    "No NVIDIA GPU to monitor.",
                    HINT_NO_GPU,
                )
            )
            return
        self._devices = devices
        for device in devices:
            self._history.setdefault(device.index, deque(maxlen=self._history_len))

    def _enumerate(self, nvml: ModuleType) -> list[_Device]:
        """Blocking: init NVML and collect the handles of the GPUs to watch."""
        if self._stale_init:
            self._stale_init = False
            with contextlib.suppress(nvml.NVMLError):
                nvml.nvmlShutdown()
        nvml.nvmlInit()
        try:
            count = int(nvml.nvmlDeviceGetCount())
            wanted = [i for i in range(count) if not self._indices or i in self._indices]
            devices = []
            for index in wanted:
                try:
                    handle = nvml.nvmlDeviceGetHandleByIndex(index)
                    name = nvml_text(nvml.nvmlDeviceGetName(handle)) or f"GPU {index}"
                    devices.append(
                        _Device(
                            index, handle, name, nvml_text(nvml.nvmlDeviceGetUUID(handle)) or ""
                        )
                    )
                except nvml.NVMLError as exc:
                    lost = isinstance(exc, nvml.NVMLError_GpuIsLost)
                    devices.append(
                        _Device(
                            index,
                            None,
                            f"GPU {index}",
                            "",
                            "lost" if lost else "error",
                            describe_device_error(index, exc, nvml),
                        )
                    )
        except BaseException:
            with contextlib.suppress(Exception):
                nvml.nvmlShutdown()
            raise
        if not devices:
            nvml.nvmlShutdown()
        return devices

    async def _sample_device(self, device: _Device) -> None:
        nvml = self._nvml
        if nvml is None or device.handle is None:
            return
        try:
            sample = await self._call(device.index, lambda: read_sample(nvml, device.handle))
        except _NoAnswerError as exc:
            device.status = "hung"
            device.message = (
                f"GPU {device.index} is still busy with an earlier driver call."
                if exc.busy
                else f"GPU {device.index} did not answer within {self._call_timeout:g} s; "
                "the NVIDIA driver may be hung."
            )
            return
        except nvml.NVMLError as exc:
            self._device_failed(device, exc, nvml)
            return
        sample = sample.stamped(self._clock())
        device.status, device.message, device.sample = "ok", "", sample
        self._history[device.index].append(
            HistoryPoint(
                sample.taken_at,
                sample.temperature_c,
                sample.power_mw,
                sample.gpu_util_percent,
                sample.vram_used_bytes,
                sample.fan_percent,
            )
        )

    def _device_failed(self, device: _Device, exc: Exception, nvml: ModuleType) -> None:
        if isinstance(exc, nvml.NVMLError_GpuIsLost):
            device.status, device.message = "lost", describe_device_error(device.index, exc, nvml)
            _log.warning("GPU %d (%s) is lost", device.index, device.name)
            return
        broken = (
            nvml.NVMLError_Uninitialized,
            nvml.NVMLError_DriverNotLoaded,
            nvml.NVMLError_LibRmVersionMismatch,
        )
        if isinstance(exc, broken):
            # The session itself is gone (driver unloaded or updated): reopen it later.
            state, message, hint = explain_nvml_error(exc, nvml)
            self._devices = None
            self._stale_init = True
            self.snapshot.set(TelemetrySnapshot(state, message, hint))
            return
        device.status = "error"
        device.message = describe_device_error(device.index, exc, nvml)

    def _summarise(self, devices: list[_Device]) -> TelemetrySnapshot:
        readings = tuple(d.reading() for d in devices)
        healthy = sum(1 for r in readings if r.status == "ok")
        plural = "s" if len(readings) > 1 else ""
        if healthy == len(readings):
            return TelemetrySnapshot(
                "ok", f"Watching {healthy} GPU{plural}.", "", readings, self._clock()
            )
        problems = " ".join(r.message for r in readings if r.status != "ok")
        state: TelemetryState = "degraded" if healthy else "error"
        return TelemetrySnapshot(state, problems, "", readings, self._clock())


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark an abandoned call's outcome as seen (its caller may have timed out long ago)."""
    if not future.cancelled():
        future.exception()


def _call_error(index: int, exc: Exception, nvml: ModuleType) -> GpuCallError:
    if isinstance(exc, nvml.NVMLError_GpuIsLost):
        return GpuCallError(describe_device_error(index, exc, nvml), kind="lost")
    if isinstance(exc, nvml.NVMLError_NoPermission):
        return GpuCallError(
            f"Changing GPU {index} needs administrator rights.",
            kind="no_permission",
            hint="Run the app as an administrator, or turn off power control.",
        )
    if is_unsupported(exc, nvml):
        return GpuCallError(f"GPU {index} does not support this ({exc}).", kind="unsupported")
    return GpuCallError(f"GPU {index}: the NVIDIA driver reported an error ({exc}).", kind="failed")
