"""Engine sizing: the hardware budget, and how context, slots, threads and batch follow from it.

Why these numbers (all overridable by the caller; the earnings benchmark then measures the result):

* **Context per request: 4096 tokens** by default. COCOON requests are chat turns whose prompt
  plus answer fit well inside 4 k; a longer context only ties up KV-cache memory that could serve
  another request at once. Never more than the model was trained for; a user setting wins if it
  fits.
* **Parallel slots: 8 on a GPU**, because batched decoding on a GPU keeps gaining aggregate
  tokens/s up to roughly 8-16 streams for models of at most 14 B parameters, and 8 is llama.cpp's
  usual server value. **On a CPU, one slot per physical core (at most 4)**: decoding there is
  compute- and memory-bound, so more streams than cores only add latency. Slots are halved until
  their KV cache fits memory.
* **Threads: physical cores on a CPU** (hyper-threads slow llama.cpp's matrix code down), at most
  4 with full GPU offload, where the CPU only schedules work.
* **Batch: 512 tokens on a CPU, 2048 on a GPU** (llama.cpp's defaults for each): bigger prompt
  batches help a GPU's prompt processing and only cost memory spikes on a CPU.
* **Memory**: the KV cache (f16) gets what is left after the weights and a fixed overhead
  (512 MiB of compute buffers / CUDA context on a GPU; on a CPU a quarter of the RAM stays for the
  OS, the app and the game the user may start). The CPU engine's address space is capped at
  weights + cache + 4 GiB of slack; a GPU engine gets no address-space cap, because CUDA reserves
  huge virtual ranges.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.core.errors import UserFacingError
from app.engine.gpu_probe import CpuInfo, GpuInventory, probe_cpu

MIB = 1 << 20
GIB = 1 << 30

DEFAULT_CONTEXT = 4096
MIN_CONTEXT = 512
# Automatic sizing never shrinks a request's context below this: shorter would reject real chats.
MIN_AUTO_CONTEXT = 2048
GPU_PARALLEL = 8
CPU_MAX_PARALLEL = 4
GPU_MAX_THREADS = 4
GPU_BATCH = 2048
CPU_BATCH = 512
GPU_OVERHEAD_BYTES = 512 * MIB
CPU_ADDRESS_SLACK_BYTES = 4 * GIB


class ModelTooLargeError(UserFacingError):
    """The model (with the smallest useful context) does not fit this machine's memory."""


class ModelSize(Protocol):
    """What sizing needs to know about a model (a catalog entry provides it)."""

    @property
    def name(self) -> str: ...

    @property
    def size_bytes(self) -> int: ...

    @property
    def kv_bytes_per_token(self) -> int: ...

    @property
    def context_length(self) -> int: ...


@dataclass(frozen=True, slots=True)
class GpuBudget:
    """One GPU as sizing sees it: its NVML index and total memory."""

    index: int
    name: str
    vram_total_bytes: int


@dataclass(frozen=True, slots=True)
class HardwareBudget:
    """The memory and cores the engine may plan with. ``gpus`` is empty on a CPU-only machine."""

    gpus: tuple[GpuBudget, ...]
    ram_total_bytes: int
    cpu_cores: int
    cpu_threads: int

    @classmethod
    def cpu_only(cls) -> HardwareBudget:
        """This machine's RAM and cores, with no GPU (GPU probing is ``gpu_probe``'s job)."""
        return cls.from_cpu(probe_cpu())

    @classmethod
    def from_cpu(cls, cpu: CpuInfo, gpus: tuple[GpuBudget, ...] = ()) -> HardwareBudget:
        """The budget of ``cpu`` (from ``gpu_probe``) with ``gpus``."""
        return cls(
            gpus=gpus,
            ram_total_bytes=cpu.ram_total_bytes,
            cpu_cores=cpu.physical_cores or cpu.logical_cores,
            cpu_threads=cpu.logical_cores,
        )

    @classmethod
    def from_inventory(cls, inventory: GpuInventory) -> HardwareBudget:
        """The budget from ``gpu_probe``'s inventory (GPUs whose memory is unknown are left out)."""
        gpus = tuple(
            GpuBudget(g.index, g.name, g.vram_total_bytes)
            for g in inventory.gpus
            if g.vram_total_bytes
        )
        return cls.from_cpu(inventory.cpu, gpus)

    @property
    def usable_ram_bytes(self) -> int:
        return self.ram_total_bytes * 3 // 4

    def gpu(self, index: int) -> GpuBudget:
        for gpu in self.gpus:
            if gpu.index == index:
                return gpu
        raise UserFacingError(
            f"There is no GPU with index {index} on this computer.",
            hint="Check the GPU selection in Settings → Engine.",
        )


@dataclass(frozen=True, slots=True)
class EngineLaunch:
    """Everything needed to start one engine child.

    ``context_length`` is per request (per slot); the engine allocates ``context_length ×
    parallel`` tokens of KV cache. ``gpu_index`` is the NVML index exported as
    ``CUDA_VISIBLE_DEVICES`` (None: CPU only). ``address_space_limit`` caps the child's virtual
    memory (None: no cap).
    """

    model_name: str
    model_path: Path
    context_length: int
    parallel: int
    threads: int
    gpu_index: int | None
    gpu_layers: int
    batch_size: int
    address_space_limit: int | None

    @property
    def total_context(self) -> int:
        return self.context_length * self.parallel


def plan_launch(
    model: ModelSize,
    model_path: Path,
    hardware: HardwareBudget,
    *,
    gpu_index: int | None,
    context_override: int = 0,
) -> EngineLaunch:
    """Choose context, slots, threads and batch for ``model`` on one GPU (or the CPU if None).

    ``context_override`` (0 = automatic) is the user's per-request context; it is never shrunk
    silently: if it does not fit even with one slot, that is a :class:`ModelTooLargeError` error.
    """
    if context_override and not MIN_CONTEXT <= context_override <= model.context_length:
        raise UserFacingError(
            f"A context length of {context_override} tokens is not possible for {model.name}.",
            hint=f"Use a value from {MIN_CONTEXT} to {model.context_length}, or 0 for automatic.",
        )
    if gpu_index is None:
        memory = hardware.usable_ram_bytes
        parallel = max(1, min(CPU_MAX_PARALLEL, hardware.cpu_cores))
        where = "RAM"
    else:
        memory = hardware.gpu(gpu_index).vram_total_bytes - GPU_OVERHEAD_BYTES
        parallel = GPU_PARALLEL
        where = "GPU memory"
    kv_budget = memory - model.size_bytes
    context = context_override or min(DEFAULT_CONTEXT, model.context_length)
    floor = context_override or min(MIN_AUTO_CONTEXT, model.context_length)
    while parallel > 1 and parallel * context * model.kv_bytes_per_token > kv_budget:
        parallel //= 2
    while context > floor and context * model.kv_bytes_per_token > kv_budget:
        context = max(floor, context // 2)
    if context * model.kv_bytes_per_token > kv_budget:
        needed = model.size_bytes + context * model.kv_bytes_per_token
        raise ModelTooLargeError(
            f"{model.name} needs about {gib_text(needed)} of {where} "
            f"with a {context}-token context; "
            f"this computer has {gib_text(max(memory, 0))} to spare for it.",
            hint="Pick a smaller model, or a shorter context length in Settings → Engine.",
        )
    on_gpu = gpu_index is not None
    kv_bytes = parallel * context * model.kv_bytes_per_token
    return EngineLaunch(
        model_name=model.name,
        model_path=model_path,
        context_length=context,
        parallel=parallel,
        threads=min(GPU_MAX_THREADS, hardware.cpu_cores) if on_gpu else hardware.cpu_cores,
        gpu_index=gpu_index,
        gpu_layers=-1 if on_gpu else 0,
        batch_size=GPU_BATCH if on_gpu else CPU_BATCH,
        address_space_limit=(
            None if on_gpu else model.size_bytes + kv_bytes + CPU_ADDRESS_SLACK_BYTES
        ),
    )


def plan_launches(
    model: ModelSize,
    model_path: Path,
    hardware: HardwareBudget,
    *,
    gpu_indices: tuple[int, ...] = (),
    context_override: int = 0,
) -> tuple[EngineLaunch, ...]:
    """One launch per GPU (``gpu_indices``; empty means every GPU), or one CPU launch if the
    machine has no GPU. Every engine serves the same model: the worker announces one model."""
    if not hardware.gpus:
        return (
            plan_launch(
                model, model_path, hardware, gpu_index=None, context_override=context_override
            ),
        )
    indices = gpu_indices or tuple(g.index for g in hardware.gpus)
    return tuple(
        plan_launch(model, model_path, hardware, gpu_index=index, context_override=context_override)
        for index in indices
    )


def gib_text(value: int) -> str:
    """A byte count as the GiB figure in sizing's messages, e.g. ``"7.5 GiB"``."""
    return f"{value / GIB:.1f} GiB"
