"""Engine planning: the GPU to use, the model that fits, and the sizes; bad choices explained."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.core.errors import UserFacingError
from app.core.settings import EngineSettings
from app.engine.catalog import load_catalog
from app.engine.gpu_probe import CpuInfo, GpuInfo, GpuInventory, probe_gpus
from app.engine.planning import hardware_budget, pick_gpu, plan_engine
from tests.fakes.fake_pynvml import FakeGpu, FakeNvml

GIB = 1 << 30
CPU = CpuInfo(
    model="Test CPU",
    physical_cores=8,
    logical_cores=16,
    ram_total_bytes=32 * GIB,
    ram_available_bytes=24 * GIB,
)


def _inventory(*gpus: FakeGpu) -> GpuInventory:
    return probe_gpus(FakeNvml(list(gpus)).module if gpus else None, cpu=CPU)


def test_cpu_only_plans_the_bundled_model(tmp_path: Path) -> None:
    plan = plan_engine(_inventory(), load_catalog(), EngineSettings(), tmp_path)
    assert plan.gpu is None
    assert plan.device_label == "CPU only — slow"
    assert plan.choice.model.bundled
    assert plan.launch.gpu_index is None
    assert plan.launch.gpu_layers == 0
    assert plan.launch.model_path.is_file()


def test_gpu_plan_offloads_everything(tmp_path: Path) -> None:
    plan = plan_engine(_inventory(FakeGpu()), load_catalog(), EngineSettings(), tmp_path)
    assert plan.gpu is not None
    assert plan.device_label.startswith("GPU 0: ")
    assert plan.launch.gpu_layers == -1
    # Only the bundled model is installed, so that is what runs until others are downloaded.
    assert plan.choice.model.bundled


def test_selected_gpu_indices_are_respected() -> None:
    inventory = _inventory(FakeGpu(), FakeGpu(uuid="GPU-1"))
    gpu = pick_gpu(inventory, (1,))
    assert gpu is not None
    assert gpu.index == 1
    assert pick_gpu(inventory, (7,)) is None


def test_gpu_of_unknown_size_is_skipped() -> None:
    unknown = GpuInfo(
        index=0,
        name="X",
        uuid="u",
        pci_bus_id=None,
        vram_total_bytes=None,
        vram_used_bytes=None,
        compute_capability=None,
    )
    inventory = dataclasses.replace(_inventory(), gpus=(unknown,))
    assert pick_gpu(inventory, ()) is None
    assert hardware_budget(inventory, None).gpus == ()


def test_model_not_downloaded_is_a_clear_error(tmp_path: Path) -> None:
    settings = EngineSettings(model="Qwen/Qwen2.5-1.5B-Instruct")
    with pytest.raises(UserFacingError, match="not downloaded"):
        plan_engine(_inventory(FakeGpu()), load_catalog(), settings, tmp_path)


def test_unknown_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserFacingError, match="not a model this app can serve"):
        plan_engine(_inventory(), load_catalog(), EngineSettings(model="x/y"), tmp_path)
