"""From hardware and settings to one engine launch: which GPU, which model, which sizes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from app.core.settings import EngineSettings
from app.engine.catalog import (
    Catalog,
    ModelChoice,
    choose_model,
    installed_model_path,
    installed_models,
)
from app.engine.gpu_probe import CPU_ONLY, GpuInfo, GpuInventory
from app.engine.sizing import EngineLaunch, HardwareBudget, plan_launch


@dataclass(frozen=True, slots=True)
class EnginePlan:
    """What the engine will run and where, with the reason shown to the user."""

    choice: ModelChoice
    launch: EngineLaunch
    gpu: GpuInfo | None

    @property
    def device_label(self) -> str:
        if self.gpu is None:
            return CPU_ONLY
        return f"GPU {self.gpu.index}: {self.gpu.name}"


def pick_gpu(inventory: GpuInventory, indices: tuple[int, ...]) -> GpuInfo | None:
    """The first usable GPU among ``indices`` (all when empty); None means the CPU engine.

    A GPU whose memory size is unknown cannot be planned for, so it is skipped.
    """
    for gpu in inventory.gpus:
        if (not indices or gpu.index in indices) and gpu.vram_total_bytes:
            return gpu
    return None


def hardware_budget(inventory: GpuInventory, gpu: GpuInfo | None) -> HardwareBudget:
    """The memory and cores the engine may use: one GPU (or none) plus this machine's CPU."""
    full = HardwareBudget.from_inventory(inventory)
    keep = () if gpu is None else tuple(g for g in full.gpus if g.index == gpu.index)
    return dataclasses.replace(full, gpus=keep)


def plan_engine(
    inventory: GpuInventory, catalog: Catalog, settings: EngineSettings, models_dir: Path
) -> EnginePlan:
    """Choose the model (the user's, else the best that fits) and size the engine for it.

    Raises a ``UserFacingError`` when the model is unknown, too large or not downloaded.
    """
    gpu = pick_gpu(inventory, settings.gpu_indices)
    hardware = hardware_budget(inventory, gpu)
    installed = installed_models(catalog, models_dir)
    choice = choose_model(hardware, catalog, settings.model, installed=installed)
    path = installed_model_path(choice.model, models_dir)
    launch = plan_launch(
        choice.model,
        path,
        hardware,
        gpu_index=gpu.index if gpu is not None and choice.device == "gpu" else None,
        context_override=settings.context_length,
    )
    return EnginePlan(choice=choice, launch=launch, gpu=gpu if choice.device == "gpu" else None)
