"""``BenchmarkRunner``: picks model and device, consults the cache, runs and measures the engine."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol

from app import __version__
from app.core.paths import AppPaths
from app.core.settings import EngineSettings
from app.engine import gpu_probe
from app.engine.benchmark import (
    BenchmarkCache,
    BenchmarkError,
    BenchmarkKey,
    BenchmarkPlan,
    BenchmarkResult,
    Progress,
    measure_engine,
    model_sha256,
)
from app.engine.catalog import Catalog, load_catalog
from app.engine.endpoint import BackendEndpoint
from app.engine.gpu_probe import GpuInfo, GpuInventory
from app.engine.planning import plan_engine
from app.engine.sandbox import detect_sandbox
from app.engine.server.launcher import launched_engine
from app.engine.sizing import EngineLaunch
from app.engine.supervisor import EngineStartError as SupervisorStartError
from app.engine.supervisor import EngineSupervisor, RestartPolicy

# Stopping the engine and writing the cache must fit inside the user's budget too.
_STOP_MARGIN_S = 2.0
_MIN_MEASURE_S = 5.0
_SANDBOX_PROBE_S = 15.0


class EngineLauncher(Protocol):
    """Runs the engine for ``launch`` while the block runs and yields where it listens."""

    def __call__(
        self, launch: EngineLaunch, paths: AppPaths
    ) -> contextlib.AbstractAsyncContextManager[BackendEndpoint]: ...


@contextlib.asynccontextmanager
async def supervised_engine(
    launch: EngineLaunch, paths: AppPaths
) -> AsyncIterator[BackendEndpoint]:
    """The engine as the worker runs it: ``EngineSupervisor`` in the sandbox, no restarts.

    Its own run folder keeps its socket apart from a worker engine that may be running too.
    """
    report = await asyncio.wait_for(asyncio.to_thread(detect_sandbox), _SANDBOX_PROBE_S)
    supervisor = EngineSupervisor(
        launch,
        run_dir=paths.run_dir / "benchmark",
        log_dir=paths.log_dir,
        sandbox=report,
        policy=RestartPolicy(max_failures=1),
    )
    await supervisor.start()
    try:
        yield await supervisor.wait_ready()
    except SupervisorStartError as exc:
        raise BenchmarkError(exc.message, hint=exc.hint) from exc
    finally:
        await supervisor.aclose()


@contextlib.asynccontextmanager
async def direct_engine(launch: EngineLaunch, paths: AppPaths) -> AsyncIterator[BackendEndpoint]:
    """The engine child without sandbox or supervisor (tests, development)."""
    log = paths.log_dir / "engine-benchmark.log"
    async with launched_engine(launch, paths.run_dir, stderr_log=log) as (endpoint, _):
        yield endpoint


@dataclass(frozen=True, slots=True)
class BenchmarkOutcome:
    """A result and whether it came from the cache (no engine was started then)."""

    result: BenchmarkResult
    from_cache: bool


def engine_version() -> str:
    """Identifies the engine build: the app and llama-cpp-python versions."""
    try:
        llama = version("llama-cpp-python")
    except PackageNotFoundError:
        llama = "unknown"
    return f"cocoon-batcher/{__version__}/llama-cpp-python-{llama}"


class BenchmarkRunner:
    """Runs one benchmark at a time for the CLI and the wizard.

    The probe and launcher are injectable so tests can pin the device; by default the real GPU
    probe and the supervised, sandboxed engine child are used.
    """

    def __init__(
        self,
        paths: AppPaths,
        *,
        catalog: Catalog | None = None,
        probe: Callable[[], Awaitable[GpuInventory]] = gpu_probe.probe,
        launcher: EngineLauncher = supervised_engine,
    ) -> None:
        self._paths = paths
        self._catalog = catalog
        self._probe = probe
        self._launcher = launcher
        self._cache = BenchmarkCache(paths.cache_dir)

    async def run(
        self,
        *,
        model_name: str = "",
        gpu_indices: tuple[int, ...] = (),
        context_override: int = 0,
        plan: BenchmarkPlan = BenchmarkPlan(),  # noqa: B008 - frozen, shared safely
        use_cache: bool = True,
        progress: Progress = lambda _line: None,
    ) -> BenchmarkOutcome:
        """Benchmark ``model_name`` (empty: the model earning would serve) exactly as earning
        would run it: same model choice, GPU and sizes (``app.engine.planning``)."""
        started = time.monotonic()
        catalog = self._catalog or load_catalog()
        progress("looking at the hardware")
        inventory = await self._probe()
        wanted = EngineSettings(
            model=model_name, gpu_indices=gpu_indices, context_length=context_override
        )
        engine_plan = plan_engine(inventory, catalog, wanted, self._paths.models_dir)
        entry, launch, gpu = engine_plan.choice.model, engine_plan.launch, engine_plan.gpu
        path = launch.model_path
        progress("identifying the model file")
        key = benchmark_key(inventory, gpu, await model_sha256(path, entry.sha256))
        cached = self._cache.load(key) if use_cache else None
        # A result measured with other answer lengths answers a different question.
        if cached is not None and cached.max_tokens == plan.max_tokens:
            return BenchmarkOutcome(cached, from_cache=True)
        device = gpu.name if gpu else f"CPU ({inventory.cpu.model})"
        progress(f"starting the engine: {entry.name} on {device}, {launch.parallel} slots")
        async with self._launcher(launch, self._paths) as endpoint:
            remaining = plan.budget_s - (time.monotonic() - started) - _STOP_MARGIN_S
            if remaining < _MIN_MEASURE_S:
                raise BenchmarkError(
                    "Starting the engine used up the benchmark's time budget.",
                    hint="Give it more time with --budget.",
                )
            result = await measure_engine(
                endpoint,
                key=key,
                model=entry.name,
                device=device,
                plan=replace(plan, budget_s=remaining),
                progress=progress,
            )
        self._cache.store(result)
        return BenchmarkOutcome(result, from_cache=False)


def benchmark_key(inventory: GpuInventory, gpu: GpuInfo | None, model_sha: str) -> BenchmarkKey:
    """The cache key of a benchmark on ``gpu`` (None: the CPU) — use it to look results up."""
    cpu = inventory.cpu
    return BenchmarkKey(
        gpu_uuid=gpu.uuid if gpu else f"cpu:{cpu.model}:{cpu.logical_cores}",
        driver=(inventory.driver_version or "unknown") if gpu else "none",
        model_sha256=model_sha,
        engine_version=engine_version(),
    )
