"""GPU discovery through a fake ``pynvml``: every state the probe reports, and the doctor report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine.gpu_probe import (
    CPU_ONLY,
    CpuInfo,
    GpuInventory,
    gpu_report,
    probe,
    probe_cpu,
    probe_gpus,
)
from tests.fakes.fake_pynvml import FakeGpu, FakeNvml, real

CPU = CpuInfo("Test CPU", 4, 8, 16 * 1024**3, 8 * 1024**3)


@pytest.fixture
def fake() -> Iterator[FakeNvml]:
    nvml = FakeNvml(2)
    yield nvml
    nvml.release()


def test_two_gpus_are_described_in_full(fake: FakeNvml) -> None:
    fake.gpus[1].name = "NVIDIA GeForce RTX 3060"
    fake.gpus[1].compute_capability = (8, 6)

    inventory = probe_gpus(fake.module, cpu=CPU)

    assert inventory.state == "ok"
    assert not inventory.cpu_only
    assert inventory.driver_version == "550.54.14"
    assert inventory.cuda_version == "12.4"
    assert [g.name for g in inventory.gpus] == [
        "NVIDIA GeForce RTX 4090",
        "NVIDIA GeForce RTX 3060",
    ]
    first = inventory.gpus[0]
    assert first.index == 0
    assert first.uuid == fake.gpus[0].uuid
    assert first.pci_bus_id == "00000000:01:00.0"
    assert first.vram_total_bytes == 24 * 1024**3
    assert first.vram_used_bytes == 512 * 1024**2
    assert first.compute_capability == (8, 9)
    assert inventory.gpus[1].compute_capability == (8, 6)
    assert "2 NVIDIA GPUs" in inventory.message
    assert fake.initialised == 0, "the probe must shut NVML down again"


def test_without_nvidia_ml_py_it_is_cpu_only() -> None:
    inventory = probe_gpus(None, cpu=CPU)

    assert inventory.state == "nvml_missing"
    assert inventory.cpu_only
    assert inventory.message.startswith(CPU_ONLY)
    assert inventory.cpu == CPU


def test_without_a_driver_library_it_is_cpu_only() -> None:
    inventory = probe_gpus(FakeNvml(library_missing=True).module, cpu=CPU)

    assert inventory.state == "nvml_missing"
    assert "no NVIDIA driver" in inventory.message
    assert "install the NVIDIA driver" in inventory.hint


def test_the_real_binding_on_this_machine_gives_an_honest_state() -> None:
    inventory = probe_gpus(cpu=CPU)  # the real pynvml; no GPU or driver here

    assert inventory.state in {"nvml_missing", "driver_not_loaded", "no_gpu", "ok"}
    if inventory.state != "ok":
        assert inventory.message.startswith(CPU_ONLY)


@pytest.mark.parametrize(
    ("code", "state", "words"),
    [
        (real.NVML_ERROR_DRIVER_NOT_LOADED, "driver_not_loaded", "not running"),
        (real.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "driver_not_loaded", "updated"),
        (real.NVML_ERROR_NO_PERMISSION, "error", "may not query"),
        (real.NVML_ERROR_UNKNOWN, "error", "Unknown Error"),
    ],
)
def test_init_errors_become_states(code: int, state: str, words: str) -> None:
    inventory = probe_gpus(FakeNvml(init_error=code).module, cpu=CPU)

    assert inventory.state == state
    assert words in inventory.message
    assert inventory.message.startswith(CPU_ONLY)
    assert inventory.hint
    assert inventory.gpus == ()


def test_a_driver_without_gpus_is_no_gpu() -> None:
    fake = FakeNvml([])

    inventory = probe_gpus(fake.module, cpu=CPU)

    assert inventory.state == "no_gpu"
    assert inventory.message.startswith(CPU_ONLY)
    assert inventory.driver_version == "550.54.14"
    assert fake.initialised == 0


def test_a_lost_gpu_is_reported_and_the_others_are_kept(fake: FakeNvml) -> None:
    fake.lose(0)

    inventory = probe_gpus(fake.module, cpu=CPU)

    assert inventory.state == "ok"
    assert [g.index for g in inventory.gpus] == [1]
    assert len(inventory.problems) == 1
    assert "GPU 0 stopped responding" in inventory.problems[0]
    assert "restart the computer" in inventory.hint


def test_all_gpus_unreadable_is_an_error(fake: FakeNvml) -> None:
    fake.lose(0)
    fake.fail("nvmlDeviceGetName", real.NVML_ERROR_UNKNOWN, gpu=1)

    inventory = probe_gpus(fake.module, cpu=CPU)

    assert inventory.state == "error"
    assert inventory.cpu_only
    assert "GPU 1 could not be read (Unknown Error)" in inventory.hint
    assert fake.initialised == 0


def test_a_failing_device_count_is_an_error(fake: FakeNvml) -> None:
    fake.fail("nvmlDeviceGetCount", real.NVML_ERROR_UNKNOWN)

    inventory = probe_gpus(fake.module, cpu=CPU)

    assert inventory.state == "error"
    assert fake.initialised == 0


def test_unsupported_fields_are_none_not_errors() -> None:
    gpu = FakeGpu(
        unsupported={
            "nvmlDeviceGetMemoryInfo",
            "nvmlDeviceGetPciInfo",
            "nvmlDeviceGetCudaComputeCapability",
        }
    )
    fake = FakeNvml([gpu])
    fake.fail("nvmlSystemGetCudaDriverVersion", real.NVML_ERROR_NOT_SUPPORTED)

    inventory = probe_gpus(fake.module, cpu=CPU)

    assert inventory.state == "ok"
    info = inventory.gpus[0]
    assert (info.vram_total_bytes, info.vram_used_bytes, info.pci_bus_id) == (None, None, None)
    assert info.compute_capability is None
    assert inventory.cuda_version is None


def test_byte_strings_from_older_bindings_are_decoded(fake: FakeNvml) -> None:
    fake.queue("nvmlDeviceGetName", b"Tesla T4", gpu=0)
    fake.queue("nvmlDeviceGetUUID", b"GPU-abc", gpu=0)

    inventory = probe_gpus(fake.module, cpu=CPU)

    assert inventory.gpus[0].name == "Tesla T4"
    assert inventory.gpus[0].uuid == "GPU-abc"


async def test_probe_runs_off_the_loop(fake: FakeNvml) -> None:
    inventory = await probe(fake.module)

    assert inventory.state == "ok"
    assert inventory.cpu.logical_cores >= 1


async def test_a_hung_driver_becomes_an_error_state(fake: FakeNvml) -> None:
    fake.hang("nvmlDeviceGetCount")

    inventory = await probe(fake.module, deadline_s=0.3)

    assert inventory.state == "error"
    assert "did not answer" in inventory.message
    assert inventory.message.startswith(CPU_ONLY)


def test_cpu_model_cores_and_ram(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD Ryzen 9 7950X 16-Core Processor\n")

    cpu = probe_cpu(cpuinfo)

    assert cpu.model == "AMD Ryzen 9 7950X 16-Core Processor"
    assert cpu.logical_cores >= 1
    assert cpu.ram_total_bytes > 0
    assert 0 < cpu.ram_available_bytes <= cpu.ram_total_bytes


def test_cpu_model_on_arm_and_without_cpuinfo(tmp_path: Path) -> None:
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 48.00\n\nHardware\t: BCM2835\n")

    assert probe_cpu(arm).model == "BCM2835"
    assert probe_cpu(tmp_path / "missing").model  # falls back to the platform's name


def test_gpu_report_is_json_ready_and_public(fake: FakeNvml) -> None:
    report = gpu_report(probe_gpus(fake.module, cpu=CPU))

    decoded = json.loads(json.dumps(report))
    assert decoded["state"] == "ok"
    assert decoded["cuda_version"] == "12.4"
    assert decoded["gpus"][0]["compute_capability"] == "8.9"
    assert decoded["gpus"][1]["pci_bus_id"] == "00000000:02:00.0"
    assert decoded["cpu"]["model"] == "Test CPU"
    assert set(decoded) == {
        "state",
        "message",
        "hint",
        "driver_version",
        "cuda_version",
        "gpus",
        "problems",
        "cpu",
    }


def test_gpu_report_for_cpu_only() -> None:
    inventory = GpuInventory("no_gpu", f"{CPU_ONLY}: none.", "", CPU)

    report = gpu_report(inventory)

    assert report["gpus"] == []
    assert report["cpu"]["logical_cores"] == 8
    json.dumps(report)
