"""``GpuSample``: one reading of a GPU's live metrics, how NVML is read for it, throttle names."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from app.engine.gpu_probe import is_unsupported

# NVML's clocks-event ("throttle") reason bits, as stable names; unknown bits show as hex.
THROTTLE_REASONS: tuple[tuple[int, str], ...] = (
    (0x001, "gpu_idle"),
    (0x002, "applications_clocks"),
    (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal_slowdown"),
    (0x040, "hw_thermal_slowdown"),
    (0x080, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
)
THROTTLE_REASON_LABELS: dict[str, str] = {
    "gpu_idle": "idle",
    "applications_clocks": "application clock setting",
    "sw_power_cap": "power limit",
    "hw_slowdown": "hardware slowdown",
    "sync_boost": "sync boost",
    "sw_thermal_slowdown": "temperature (driver)",
    "hw_thermal_slowdown": "temperature (hardware)",
    "hw_power_brake_slowdown": "power brake",
    "display_clock_setting": "display clock",
}


@dataclass(frozen=True, slots=True)
class ProcessVram:
    """VRAM held by one process on a GPU (``None`` where the driver does not say, e.g. WDDM)."""

    pid: int
    used_bytes: int | None


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One GPU's metrics at ``taken_at`` (monotonic seconds). ``None``: not reported by this GPU."""

    taken_at: float
    temperature_c: int | None
    fan_percent: int | None
    power_mw: int | None
    power_limit_mw: int | None
    gpu_util_percent: int | None
    memory_util_percent: int | None
    graphics_clock_mhz: int | None
    sm_clock_mhz: int | None
    memory_clock_mhz: int | None
    throttle_reasons: tuple[str, ...] | None
    # NVML's cumulative energy counter since the driver loaded (Volta and newer), in millijoules.
    energy_mj: int | None
    vram_used_bytes: int | None
    vram_total_bytes: int | None
    processes: tuple[ProcessVram, ...] | None

    @property
    def power_w(self) -> float | None:
        return None if self.power_mw is None else self.power_mw / 1000

    def stamped(self, taken_at: float) -> GpuSample:
        return dataclasses.replace(self, taken_at=taken_at)


def decode_throttle_reasons(mask: int) -> tuple[str, ...]:
    """Turn NVML's reason bit mask into stable names (unknown bits as ``0x…``)."""
    names = [name for bit, name in THROTTLE_REASONS if mask & bit]
    known = 0
    for bit, _ in THROTTLE_REASONS:
        known |= bit
    if mask & ~known:
        names.append(f"0x{mask & ~known:x}")
    return tuple(names)


def read_sample(nvml: ModuleType, handle: Any) -> GpuSample:
    """Blocking: read every metric of one GPU. Unsupported metrics are ``None``; others raise."""

    def opt(name: str, *args: Any) -> Any:
        function = getattr(nvml, name, None)
        if function is None:  # an older binding without this function
            return None
        try:
            return function(handle, *args)
        except nvml.NVMLError as exc:
            if is_unsupported(exc, nvml):
                return None
            raise

    memory = opt("nvmlDeviceGetMemoryInfo")
    rates = opt("nvmlDeviceGetUtilizationRates")
    reasons = opt("nvmlDeviceGetCurrentClocksEventReasons")
    if reasons is None:  # drivers before 535 only know the older name
        reasons = opt("nvmlDeviceGetCurrentClocksThrottleReasons")
    processes = opt("nvmlDeviceGetComputeRunningProcesses")
    return GpuSample(
        taken_at=0.0,
        temperature_c=_int(opt("nvmlDeviceGetTemperature", nvml.NVML_TEMPERATURE_GPU)),
        fan_percent=_int(opt("nvmlDeviceGetFanSpeed")),
        power_mw=_int(opt("nvmlDeviceGetPowerUsage")),
        power_limit_mw=_int(opt("nvmlDeviceGetEnforcedPowerLimit")),
        gpu_util_percent=_int(rates.gpu) if rates is not None else None,
        memory_util_percent=_int(rates.memory) if rates is not None else None,
        graphics_clock_mhz=_int(opt("nvmlDeviceGetClockInfo", nvml.NVML_CLOCK_GRAPHICS)),
        sm_clock_mhz=_int(opt("nvmlDeviceGetClockInfo", nvml.NVML_CLOCK_SM)),
        memory_clock_mhz=_int(opt("nvmlDeviceGetClockInfo", nvml.NVML_CLOCK_MEM)),
        throttle_reasons=decode_throttle_reasons(int(reasons)) if reasons is not None else None,
        energy_mj=_int(opt("nvmlDeviceGetTotalEnergyConsumption")),
        vram_used_bytes=_int(memory.used) if memory is not None else None,
        vram_total_bytes=_int(memory.total) if memory is not None else None,
        processes=(
            tuple(ProcessVram(int(p.pid), _int(p.usedGpuMemory)) for p in processes)
            if processes is not None
            else None
        ),
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
