"""A scriptable stand-in for ``pynvml``: the functions the engine uses, with the real error classes.

Errors are raised as ``pynvml.NVMLError(code)`` from the real binding, so the real class mapping
(``NVMLError(15)`` → ``NVMLError_GpuIsLost``) and therefore the app's real ``except`` clauses are
exercised. Return values use the binding's own ctypes structs where it returns structs.
"""

# The methods keep pynvml's camelCase names: the app calls them through the module by those names.
# ruff: noqa: N802

from __future__ import annotations

import importlib
import threading
import types
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

real: Any = importlib.import_module("pynvml")

NVMLError: type[Exception] = real.NVMLError

# Function names whose first argument is a device handle (all of them can be scripted per device).
_DEVICE_FUNCTIONS = (
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetPciInfo",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetCudaComputeCapability",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetFanSpeed",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetPowerManagementLimit",
    "nvmlDeviceGetPowerManagementLimitConstraints",
    "nvmlDeviceSetPowerManagementLimit",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetClockInfo",
    "nvmlDeviceGetCurrentClocksEventReasons",
    "nvmlDeviceGetCurrentClocksThrottleReasons",
    "nvmlDeviceGetTotalEnergyConsumption",
    "nvmlDeviceGetComputeRunningProcesses",
)
_SYSTEM_FUNCTIONS = (
    "nvmlInit",
    "nvmlShutdown",
    "nvmlSystemGetDriverVersion",
    "nvmlSystemGetCudaDriverVersion",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex",
)


@dataclass
class FakeGpu:
    """One simulated device; tests change its fields between samples to script readings."""

    name: str = "NVIDIA GeForce RTX 4090"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    pci_bus_id: str = "00000000:01:00.0"
    memory_total: int = 24 * 1024**3
    memory_used: int = 512 * 1024**2
    compute_capability: tuple[int, int] = (8, 9)
    temperature_c: int = 45
    fan_percent: int = 30
    power_mw: int = 60_000
    power_limit_mw: int = 450_000
    power_limit_range_mw: tuple[int, int] = (150_000, 600_000)
    utilization: tuple[int, int] = (0, 0)
    clocks_mhz: dict[int, int] = field(default_factory=lambda: {0: 2520, 1: 2520, 2: 10501})
    throttle_reasons: int = 0
    energy_mj: int = 1_000_000
    # Added to the energy counter after each read: a steady ramp (mJ per read).
    energy_step_mj: int = 0
    processes: list[tuple[int, int | None]] = field(default_factory=list)
    # Function names that answer NVML_ERROR_NOT_SUPPORTED on this device.
    unsupported: set[str] = field(default_factory=set)
    lost: bool = False


@dataclass(frozen=True)
class _Handle:
    index: int


class FakeNvml:
    """The fake driver's state and scripting; :attr:`module` is what the app receives as ``pynvml``.

    * ``library_missing`` / ``init_error``: how ``nvmlInit`` fails (as the real binding does).
    * :meth:`fail` raises an NVML error on the Nth call of a function (optionally for one device).
    * :meth:`hang` blocks the Nth call until :meth:`release` (tests always release in teardown).
    * :meth:`queue` scripts return values call by call; :meth:`lose` makes a GPU report lost.
    """

    def __init__(
        self,
        gpus: int | list[FakeGpu] = 1,
        *,
        driver_version: str = "550.54.14",
        cuda_version: int = 12040,
        library_missing: bool = False,
        init_error: int | None = None,
    ) -> None:
        if isinstance(gpus, int):
            gpus = [
                FakeGpu(
                    uuid=f"GPU-{i:08d}-0000-0000-0000-000000000000",
                    pci_bus_id=f"00000000:0{i + 1}:00.0",
                )
                for i in range(gpus)
            ]
        self.gpus = gpus
        self.driver_version = driver_version
        self.cuda_version = cuda_version
        self.library_missing = library_missing
        self.init_error = init_error
        self.initialised = 0
        self.calls: list[tuple[str, int | None]] = []
        self.set_power_limits: list[tuple[int, int]] = []
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int | None], int] = defaultdict(int)
        self._failures: dict[tuple[str, int | None], dict[int, int]] = defaultdict(dict)
        self._hangs: dict[tuple[str, int | None], set[int]] = defaultdict(set)
        self._queued: dict[tuple[str, int | None], deque[Any]] = defaultdict(deque)
        self._release = threading.Event()
        self.hung_calls = 0
        self.module = self._build_module()

    # -- scripting ---------------------------------------------------------------------------
    def fail(
        self, function: str, code: int, *, nth: int = 1, times: int = 1, gpu: int | None = None
    ) -> None:
        """Raise ``NVMLError(code)`` on calls ``nth`` .. ``nth + times - 1`` of ``function``."""
        for call in range(nth, nth + times):
            self._failures[(function, gpu)][call] = code

    def hang(self, function: str, *, nth: int = 1, gpu: int | None = None) -> None:
        """Block the ``nth`` call of ``function`` until :meth:`release` (a driver that hangs)."""
        self._hangs[(function, gpu)].add(nth)

    def release(self) -> None:
        """Let every hung call return."""
        self._release.set()

    def queue(self, function: str, *values: Any, gpu: int | None = None) -> None:
        """The next calls of ``function`` return ``values`` in order, then the device's fields."""
        self._queued[(function, gpu)].extend(values)

    def lose(self, index: int) -> None:
        """GPU ``index`` falls off the bus: every call on it raises ``NVMLError_GpuIsLost``."""
        self.gpus[index].lost = True

    def count(self, function: str, gpu: int | None = None) -> int:
        with self._lock:
            return self._counts[(function, gpu)]

    # -- the module ---------------------------------------------------------------------------
    def _build_module(self) -> types.ModuleType:
        module = types.ModuleType("pynvml")
        for name in dir(real):
            if name.startswith(("NVML_", "NVMLError", "nvmlClocks")):
                setattr(module, name, getattr(real, name))
        for name in (*_SYSTEM_FUNCTIONS, *_DEVICE_FUNCTIONS):
            setattr(module, name, getattr(self, name))
        return module

    def _enter(self, function: str, handle: object = None) -> FakeGpu | None:
        """Book-keeping shared by every call: count, scripted failures and hangs, lost GPUs."""
        gpu_index = self._check_handle(handle)
        hang, code = self._book(function, gpu_index)
        if hang:
            with self._lock:
                self.hung_calls += 1
            self._release.wait()
        if code is not None:
            raise real.NVMLError(code)
        if function not in {"nvmlInit", "nvmlShutdown"} and not self.initialised:
            raise real.NVMLError(real.NVML_ERROR_UNINITIALIZED)
        if gpu_index is None:
            return None
        gpu = self.gpus[gpu_index]
        if gpu.lost:
            raise real.NVMLError(real.NVML_ERROR_GPU_IS_LOST)
        if function in gpu.unsupported:
            raise real.NVMLError(real.NVML_ERROR_NOT_SUPPORTED)
        return gpu

    def _check_handle(self, handle: object) -> int | None:
        if handle is None:
            return None
        if not isinstance(handle, _Handle) or not 0 <= handle.index < len(self.gpus):
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        return handle.index

    def _book(self, function: str, gpu_index: int | None) -> tuple[bool, int | None]:
        """Count the call; return whether it hangs and which error code it fails with, if any."""
        with self._lock:
            self.calls.append((function, gpu_index))
            self._counts[(function, None)] += 1
            nth_any = self._counts[(function, None)]
            hang = nth_any in self._hangs[(function, None)]
            code = self._failures[(function, None)].get(nth_any)
            if gpu_index is not None:
                self._counts[(function, gpu_index)] += 1
                nth_gpu = self._counts[(function, gpu_index)]
                hang = hang or nth_gpu in self._hangs[(function, gpu_index)]
                if code is None:
                    code = self._failures[(function, gpu_index)].get(nth_gpu)
        return hang, code

    def _next_queued(self, function: str, gpu: int | None) -> tuple[bool, Any]:
        with self._lock:
            for key in ((function, gpu), (function, None)):
                if self._queued[key]:
                    return True, self._queued[key].popleft()
        return False, None

    # -- system functions ----------------------------------------------------------------------
    def nvmlInit(self) -> None:
        if self.library_missing:
            self._enter("nvmlInit")
            raise real.NVMLError(real.NVML_ERROR_LIBRARY_NOT_FOUND)
        self._enter("nvmlInit")
        if self.init_error is not None:
            raise real.NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        if not self.initialised:
            raise real.NVMLError(real.NVML_ERROR_UNINITIALIZED)
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._enter("nvmlSystemGetDriverVersion")
        return self.driver_version

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion")
        return self.cuda_version

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        queued, value = self._next_queued("nvmlDeviceGetCount", None)
        return int(value) if queued else len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        if self.gpus[index].lost:
            raise real.NVMLError(real.NVML_ERROR_GPU_IS_LOST)
        return _Handle(index)

    # -- device functions ----------------------------------------------------------------------
    def _value(self, function: str, handle: object, default: Any) -> Any:
        gpu = self._enter(function, handle)
        assert gpu is not None
        queued, value = self._next_queued(function, self.gpus.index(gpu))
        return value if queued else default(gpu)

    # Returned as queued: a test may queue bytes, as bindings before 11.515 returned.
    def nvmlDeviceGetName(self, handle: object) -> Any:
        return self._value("nvmlDeviceGetName", handle, lambda g: g.name)

    def nvmlDeviceGetUUID(self, handle: object) -> Any:
        return self._value("nvmlDeviceGetUUID", handle, lambda g: g.uuid)

    def nvmlDeviceGetPciInfo(self, handle: object) -> Any:
        def build(gpu: FakeGpu) -> Any:
            info = real.nvmlPciInfo_t()
            info.busId = gpu.pci_bus_id
            info.busIdLegacy = gpu.pci_bus_id
            return info

        return self._value("nvmlDeviceGetPciInfo", handle, build)

    def nvmlDeviceGetMemoryInfo(self, handle: object) -> Any:
        def build(gpu: FakeGpu) -> Any:
            memory = real.c_nvmlMemory_t()
            memory.total, memory.used = gpu.memory_total, gpu.memory_used
            memory.free = gpu.memory_total - gpu.memory_used
            return memory

        return self._value("nvmlDeviceGetMemoryInfo", handle, build)

    def nvmlDeviceGetCudaComputeCapability(self, handle: object) -> tuple[int, int]:
        return tuple(
            self._value(
                "nvmlDeviceGetCudaComputeCapability", handle, lambda g: g.compute_capability
            )
        )

    def nvmlDeviceGetTemperature(self, handle: object, sensor: int) -> int:
        if sensor != real.NVML_TEMPERATURE_GPU:
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        return int(self._value("nvmlDeviceGetTemperature", handle, lambda g: g.temperature_c))

    def nvmlDeviceGetFanSpeed(self, handle: object) -> int:
        return int(self._value("nvmlDeviceGetFanSpeed", handle, lambda g: g.fan_percent))

    def nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        return int(self._value("nvmlDeviceGetPowerUsage", handle, lambda g: g.power_mw))

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: object) -> int:
        return int(
            self._value("nvmlDeviceGetEnforcedPowerLimit", handle, lambda g: g.power_limit_mw)
        )

    def nvmlDeviceGetPowerManagementLimit(self, handle: object) -> int:
        return int(
            self._value("nvmlDeviceGetPowerManagementLimit", handle, lambda g: g.power_limit_mw)
        )

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: object) -> list[int]:
        return list(
            self._value(
                "nvmlDeviceGetPowerManagementLimitConstraints",
                handle,
                lambda g: g.power_limit_range_mw,
            )
        )

    def nvmlDeviceSetPowerManagementLimit(self, handle: object, limit: int) -> None:
        gpu = self._enter("nvmlDeviceSetPowerManagementLimit", handle)
        assert gpu is not None
        low, high = gpu.power_limit_range_mw
        if not low <= limit <= high:
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        gpu.power_limit_mw = limit
        self.set_power_limits.append((self.gpus.index(gpu), limit))

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> Any:
        def build(gpu: FakeGpu) -> Any:
            rates = real.c_nvmlUtilization_t()
            rates.gpu, rates.memory = gpu.utilization
            return rates

        return self._value("nvmlDeviceGetUtilizationRates", handle, build)

    def nvmlDeviceGetClockInfo(self, handle: object, clock_type: int) -> int:
        return int(
            self._value("nvmlDeviceGetClockInfo", handle, lambda g: g.clocks_mhz[clock_type])
        )

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: object) -> int:
        return int(
            self._value(
                "nvmlDeviceGetCurrentClocksEventReasons", handle, lambda g: g.throttle_reasons
            )
        )

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: object) -> int:
        return int(
            self._value(
                "nvmlDeviceGetCurrentClocksThrottleReasons", handle, lambda g: g.throttle_reasons
            )
        )

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> int:
        def read(gpu: FakeGpu) -> int:
            value = gpu.energy_mj
            gpu.energy_mj += gpu.energy_step_mj
            return value

        return int(self._value("nvmlDeviceGetTotalEnergyConsumption", handle, read))

    def nvmlDeviceGetComputeRunningProcesses(self, handle: object) -> list[Any]:
        def build(gpu: FakeGpu) -> list[Any]:
            return [
                real.nvmlFriendlyObject({"pid": pid, "usedGpuMemory": used})
                for pid, used in gpu.processes
            ]

        return list(self._value("nvmlDeviceGetComputeRunningProcesses", handle, build))
