"""GPU and CPU discovery: which NVIDIA GPUs NVML sees (or why none), plus the CPU and RAM facts.

Also owns how NVML errors are explained to the user, the off-loop call primitive every NVML user
shares (:func:`run_in_daemon_thread`) and the ``doctor`` report (:func:`gpu_report`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import platform
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypeVar

import psutil

_log = logging.getLogger(__name__)

InventoryState = Literal["ok", "nvml_missing", "driver_not_loaded", "no_gpu", "error"]

CPU_ONLY = "CPU only — slow"
# Hints shared with ``telemetry``, which meets the same driver states.
HINT_REINSTALL_NVML = "Reinstall the app; it ships with nvidia-ml-py."
HINT_DRIVER_HUNG = "Run 'nvidia-smi'; if it hangs too, restart the computer."
HINT_NO_GPU = "Check that the GPU is seated and powered, then run 'nvidia-smi'."
_MISSING: Any = object()
_CPU_DEADLINE_S = 10.0
T = TypeVar("T")


def run_in_daemon_thread(function: Callable[[], T]) -> asyncio.Future[T]:
    """Run a blocking NVML call in its own daemon thread; the returned future gets its result.

    Not ``asyncio.to_thread``: the default executor's threads are joined when the loop and the
    interpreter shut down, so one call hung inside the driver would keep the app from quitting.
    A daemon thread is abandoned at exit instead. Callers bound the wait with ``asyncio.wait_for``
    (shielding the future so a timeout does not lose track of the call still in flight).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(result: T | None, error: BaseException | None) -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def body() -> None:
        try:
            result = function()
        except BaseException as exc:  # handed to the awaiting coroutine, not swallowed
            error: BaseException | None = exc
            result = None
        else:
            error = None
        # RuntimeError: the loop closed while the driver was busy; nobody waits any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(deliver, result, error)

    threading.Thread(target=body, name="nvml-call", daemon=True).start()
    return future


@dataclass(frozen=True, slots=True)
class GpuInfo:
    """One NVIDIA GPU as NVML describes it. Fields the GPU does not report are ``None``."""

    index: int
    name: str
    uuid: str
    pci_bus_id: str | None
    vram_total_bytes: int | None
    vram_used_bytes: int | None
    compute_capability: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class CpuInfo:
    """What the engine needs to size itself when it runs on the CPU."""

    model: str
    physical_cores: int | None
    logical_cores: int
    ram_total_bytes: int
    ram_available_bytes: int


@dataclass(frozen=True, slots=True)
class GpuInventory:
    """The probe's answer: the GPUs found, or the state explaining why there are none."""

    state: InventoryState
    message: str
    hint: str
    cpu: CpuInfo
    gpus: tuple[GpuInfo, ...] = ()
    driver_version: str | None = None
    cuda_version: str | None = None
    # GPUs that were counted but could not be read; each entry is a user-facing sentence.
    problems: tuple[str, ...] = ()

    @property
    def cpu_only(self) -> bool:
        return not self.gpus


def load_nvml() -> ModuleType | None:
    """The real ``pynvml`` module, or ``None`` when ``nvidia-ml-py`` is not installed."""
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        return None


def explain_nvml_error(exc: Exception, nvml: ModuleType) -> tuple[InventoryState, str, str]:
    """Map an error from ``nvmlInit`` (or a system call) to a state, a message and a hint."""
    if isinstance(exc, nvml.NVMLError_LibraryNotFound):
        return (
            "nvml_missing",
            f"{CPU_ONLY}: no NVIDIA driver was found on this computer.",
            "If it has an NVIDIA GPU, install the NVIDIA driver and restart the app.",
        )
    if isinstance(exc, nvml.NVMLError_DriverNotLoaded):
        return (
            "driver_not_loaded",
            f"{CPU_ONLY}: the NVIDIA driver is installed but not running.",
            "Restart the computer. If that does not help, check that Secure Boot allows the "
            "NVIDIA kernel module (run 'nvidia-smi' to see the driver's own error).",
        )
    if isinstance(exc, nvml.NVMLError_LibRmVersionMismatch):
        return (
            "driver_not_loaded",
            f"{CPU_ONLY}: the NVIDIA driver was updated but the old one is still loaded.",
            "Restart the computer to finish the driver update.",
        )
    if isinstance(exc, nvml.NVMLError_NoPermission):
        return (
            "error",
            f"{CPU_ONLY}: this user may not query the NVIDIA driver.",
            "Check the permissions of /dev/nvidia* (or ask your administrator).",
        )
    return (
        "error",
        f"{CPU_ONLY}: the NVIDIA driver reported an error ({exc}).",
        "Run 'nvidia-smi' to check the driver; restarting the computer often helps.",
    )


def probe_cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """CPU model, cores and RAM (blocking but fast: a small file read and two psutil calls)."""
    memory = psutil.virtual_memory()
    return CpuInfo(
        model=_cpu_model(cpuinfo),
        physical_cores=psutil.cpu_count(logical=False),
        logical_cores=psutil.cpu_count(logical=True) or os.cpu_count() or 1,
        ram_total_bytes=int(memory.total),
        ram_available_bytes=int(memory.available),
    )


def _cpu_model(cpuinfo: Path) -> str:
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        # x86 says "model name"; some ARM kernels only have "Hardware" or "Processor".
        if sep and key.strip() in {"model name", "Hardware", "Processor"} and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def probe_gpus(nvml: ModuleType | None = _MISSING, *, cpu: CpuInfo | None = None) -> GpuInventory:
    """Enumerate GPUs through NVML (blocking; see :func:`probe` for the loop-safe call).

    ``nvml`` is the ``pynvml`` module (tests pass a fake); ``None`` means it is not installed.
    Never raises for driver trouble: every failure becomes a state with an explanation.
    """
    if nvml is _MISSING:
        nvml = load_nvml()
    cpu = cpu or probe_cpu()
    if nvml is None:
        return GpuInventory(
            state="nvml_missing",
            message=f"{CPU_ONLY}: the NVIDIA management library (nvidia-ml-py) is not installed.",
            hint=HINT_REINSTALL_NVML,
            cpu=cpu,
        )
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        state, message, hint = explain_nvml_error(exc, nvml)
        _log.info("NVML unavailable: %s", message)
        return GpuInventory(state=state, message=message, hint=hint, cpu=cpu)
    try:
        return _enumerate(nvml, cpu)
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError as exc:
            _log.debug("nvmlShutdown failed: %s", exc)


def _enumerate(nvml: ModuleType, cpu: CpuInfo) -> GpuInventory:
    driver = _optional(nvml, nvml.nvmlSystemGetDriverVersion)
    cuda_raw = _optional(nvml, nvml.nvmlSystemGetCudaDriverVersion)
    cuda = f"{cuda_raw // 1000}.{cuda_raw % 1000 // 10}" if isinstance(cuda_raw, int) else None
    facts: dict[str, Any] = {"driver_version": nvml_text(driver), "cuda_version": cuda}
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except nvml.NVMLError as exc:
        state, message, hint = explain_nvml_error(exc, nvml)
        return GpuInventory(state=state, message=message, hint=hint, cpu=cpu, **facts)
    gpus: list[GpuInfo] = []
    problems: list[str] = []
    for index in range(count):
        try:
            gpus.append(read_gpu_info(nvml, index))
        except nvml.NVMLError as exc:
            problems.append(describe_device_error(index, exc, nvml))
    if gpus:
        names = ", ".join(g.name for g in gpus)
        message = f"{len(gpus)} NVIDIA GPU{'s' if len(gpus) > 1 else ''}: {names}."
        hint = " ".join(problems)
        return GpuInventory(
            "ok", message, hint, cpu, tuple(gpus), problems=tuple(problems), **facts
        )
    if problems:
        return GpuInventory(
            state="error",
            message=f"{CPU_ONLY}: the NVIDIA GPU{'s' if count > 1 else ''} could not be read.",
            hint=" ".join(problems),
            cpu=cpu,
            problems=tuple(problems),
            **facts,
        )
    return GpuInventory(
        state="no_gpu",
        message=f"{CPU_ONLY}: the NVIDIA driver is running but sees no GPU.",
        hint=HINT_NO_GPU,
        cpu=cpu,
        **facts,
    )


def read_gpu_info(nvml: ModuleType, index: int) -> GpuInfo:
    """Read one GPU's identity and VRAM; unsupported fields become ``None``, other errors raise."""
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    memory = _optional(nvml, nvml.nvmlDeviceGetMemoryInfo, handle)
    pci = _optional(nvml, nvml.nvmlDeviceGetPciInfo, handle)
    capability = _optional(nvml, nvml.nvmlDeviceGetCudaComputeCapability, handle)
    return GpuInfo(
        index=index,
        name=nvml_text(nvml.nvmlDeviceGetName(handle)) or f"GPU {index}",
        uuid=nvml_text(nvml.nvmlDeviceGetUUID(handle)) or "",
        pci_bus_id=nvml_text(pci.busId) if pci is not None else None,
        vram_total_bytes=int(memory.total) if memory is not None else None,
        vram_used_bytes=int(memory.used) if memory is not None else None,
        compute_capability=(int(capability[0]), int(capability[1])) if capability else None,
    )


def describe_device_error(index: int, exc: Exception, nvml: ModuleType) -> str:
    """A user-facing sentence for an error on one GPU."""
    if isinstance(exc, nvml.NVMLError_GpuIsLost):
        return (
            f"GPU {index} stopped responding (the driver reports it lost); "
            "restart the computer to recover it."
        )
    return f"GPU {index} could not be read ({exc})."


def is_unsupported(exc: Exception, nvml: ModuleType) -> bool:
    """True for errors meaning "this GPU or driver does not offer that metric"."""
    return isinstance(
        exc,
        nvml.NVMLError_NotSupported | nvml.NVMLError_FunctionNotFound | nvml.NVMLError_NoPermission,
    )


def _optional(nvml: ModuleType, function: Any, *args: Any) -> Any:
    """Call ``function``; ``None`` if the GPU or driver does not support it."""
    try:
        return function(*args)
    except nvml.NVMLError as exc:
        if is_unsupported(exc, nvml):
            return None
        raise


def nvml_text(value: object) -> str | None:
    """A string NVML returned (``bytes`` from older bindings) as ``str``; ``None`` stays."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


async def probe(nvml: ModuleType | None = _MISSING, *, deadline_s: float = 15.0) -> GpuInventory:
    """:func:`probe_gpus` off the event loop; a driver that does not answer becomes ``error``."""
    # Reading /proc and psutil does not hang the way a driver can; a short GPU deadline (tests,
    # impatient callers) must not turn a busy machine's CPU facts into a crash.
    cpu = await asyncio.wait_for(asyncio.to_thread(probe_cpu), max(deadline_s, _CPU_DEADLINE_S))
    try:
        return await asyncio.wait_for(
            run_in_daemon_thread(lambda: probe_gpus(nvml, cpu=cpu)), deadline_s
        )
    except TimeoutError:
        return GpuInventory(
            state="error",
            message=f"{CPU_ONLY}: the NVIDIA driver did not answer within {deadline_s:g} s.",
            hint=HINT_DRIVER_HUNG,
            cpu=cpu,
        )


def gpu_report(inventory: GpuInventory) -> dict[str, Any]:
    """The ``doctor`` command's GPU section: JSON-ready, public facts only."""
    return {
        "state": inventory.state,
        "message": inventory.message,
        "hint": inventory.hint,
        "driver_version": inventory.driver_version,
        "cuda_version": inventory.cuda_version,
        "gpus": [
            {
                "index": g.index,
                "name": g.name,
                "uuid": g.uuid,
                "pci_bus_id": g.pci_bus_id,
                "vram_total_bytes": g.vram_total_bytes,
                "vram_used_bytes": g.vram_used_bytes,
                "compute_capability": (
                    f"{g.compute_capability[0]}.{g.compute_capability[1]}"
                    if g.compute_capability
                    else None
                ),
            }
            for g in inventory.gpus
        ],
        "problems": list(inventory.problems),
        "cpu": {
            "model": inventory.cpu.model,
            "physical_cores": inventory.cpu.physical_cores,
            "logical_cores": inventory.cpu.logical_cores,
            "ram_total_bytes": inventory.cpu.ram_total_bytes,
            "ram_available_bytes": inventory.cpu.ram_available_bytes,
        },
    }
