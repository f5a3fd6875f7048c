"""EngineSupervisor with real child processes (tests/unit/engine/programs/fake_engine.py).

The fake engine follows the real server's command-line contract and misbehaves on request, so the
supervisor's start, readiness, health, crash, restart and stop paths run for real.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from app.engine.catalog import bundled_model_path, load_catalog
from app.engine.endpoint import BackendEndpoint
from app.engine.sandbox import SandboxLevel, SandboxReport, detect_sandbox
from app.engine.sizing import GIB, EngineLaunch, HardwareBudget, ModelTooLargeError, plan_launch
from app.engine.supervisor import (
    EngineStartError,
    EngineStatus,
    EngineSupervisor,
    EngineTimeouts,
    RestartPolicy,
)

PROGRAM = Path(__file__).resolve().parent / "programs" / "fake_engine.py"
MODEL = bundled_model_path(load_catalog().default)
NAME = load_catalog().default.name
BASIC = SandboxReport(SandboxLevel.BASIC, "test")
FAST = EngineTimeouts(
    start=30, health_interval=0.2, health_timeout=1.0, health_failures=2, stop_grace=5.0
)
NO_RESTART = RestartPolicy(initial_delay=0.0, max_failures=0)
QUICK_RESTART = RestartPolicy(initial_delay=0.05, max_delay=0.1, max_failures=3)

needs_bwrap = pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("bwrap") is None,
    reason="bubblewrap is not installed (apt-get install bubblewrap); the strong level needs it",
)


def launch_for(model: Path = MODEL, gpu_index: int | None = None) -> EngineLaunch:
    return EngineLaunch(
        model_name=NAME,
        model_path=model,
        context_length=512,
        parallel=2,
        threads=1,
        gpu_index=gpu_index,
        gpu_layers=0 if gpu_index is None else -1,
        batch_size=64,
        address_space_limit=None,
    )


@asynccontextmanager
async def supervised(
    tmp_path: Path,
    behaviour: str = "ok",
    *,
    report: SandboxReport = BASIC,
    policy: RestartPolicy = NO_RESTART,
    timeouts: EngineTimeouts = FAST,
    model: Path = MODEL,
    program: list[str] | None = None,
    gpu_index: int | None = None,
) -> AsyncIterator[tuple[EngineSupervisor, list[EngineStatus]]]:
    argv = program or [
        sys.executable,
        str(PROGRAM),
        "--behaviour",
        behaviour,
        "--state-dir",
        str(tmp_path),
    ]
    supervisor = EngineSupervisor(
        launch_for(model, gpu_index),
        run_dir=tmp_path / "run",
        log_dir=tmp_path / "logs",
        sandbox=report,
        program=argv,
        extra_read_only=[PROGRAM],
        policy=policy,
        timeouts=timeouts,
    )
    seen: list[EngineStatus] = []
    supervisor.status.subscribe(seen.append)
    await supervisor.start()
    try:
        yield supervisor, seen
    finally:
        await supervisor.aclose()


async def until(
    supervisor: EngineSupervisor, predicate: Callable[[EngineStatus], bool]
) -> EngineStatus:
    """The first status matching ``predicate`` (a 30 s guard turns a hang into a failure)."""
    reached = asyncio.Event()
    unsubscribe = supervisor.status.subscribe(
        lambda s: reached.set() if predicate(s) else None, replay=True
    )
    try:
        async with asyncio.timeout(30):
            await reached.wait()
    finally:
        unsubscribe()
    return supervisor.status.value


def session_for(endpoint: BackendEndpoint) -> aiohttp.ClientSession:
    connector = (
        aiohttp.UnixConnector(path=str(endpoint.unix_socket)) if endpoint.unix_socket else None
    )
    return aiohttp.ClientSession(connector=connector)


async def chat(endpoint: BackendEndpoint, key: str | None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": NAME, "messages": [{"role": "user", "content": "hi"}]}
    async with (
        session_for(endpoint) as session,
        session.post(f"{endpoint.base_url}/v1/chat/completions", json=body, headers=headers) as r,
    ):
        await r.read()
        return r.status


def new_children(tmp_path: Path) -> list[psutil.Process]:
    """Live child processes started for this test (their command line names its tmp_path)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and str(tmp_path) in " ".join(
                child.cmdline()
            ):
                found.append(child)
        except psutil.Error:
            continue
    return found


def tree_of(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


# -- healthy engines -------------------------------------------------------------------------------


async def test_basic_level_serves_on_loopback_and_requires_the_api_key(tmp_path: Path) -> None:
    async with supervised(tmp_path) as (supervisor, _):
        endpoint = await supervisor.wait_ready()
        assert endpoint.base_url.startswith("http://127.0.0.1:")
        assert endpoint.unix_socket is None
        assert endpoint.api_key is not None
        assert endpoint.capacity == 2
        assert endpoint.api_key not in repr(endpoint)
        assert await chat(endpoint, endpoint.api_key) == 200
        assert await chat(endpoint, None) == 401
        assert await chat(endpoint, "x" * 43) == 401
        status = supervisor.status.value
        assert (status.state, status.sandbox, status.model, status.restarts) == (
            "ready",
            SandboxLevel.BASIC,
            NAME,
            0,
        )
        assert status.pid is not None
        assert psutil.pid_exists(status.pid)
        key_file = tmp_path / "run" / "engine-cpu" / "api-key"
        assert key_file.stat().st_mode & 0o077 == 0
    assert supervisor.status.value.state == "stopped"
    assert supervisor.endpoint is None
    assert not key_file.exists()
    log = (tmp_path / "logs" / "engine-cpu.log").read_text()
    assert "fake engine starting (ok)" in log
    assert endpoint.api_key not in log


@needs_bwrap
async def test_strong_level_serves_on_a_unix_socket_only(tmp_path: Path) -> None:
    async with supervised(tmp_path, report=detect_sandbox()) as (supervisor, _):
        endpoint = await supervisor.wait_ready()
        assert endpoint.unix_socket is not None
        assert endpoint.api_key is None
        assert endpoint.base_url == "http://engine"
        assert await chat(endpoint, None) == 200
        assert supervisor.status.value.sandbox is SandboxLevel.STRONG
        pid = supervisor.status.value.pid
        assert pid is not None
        sock = endpoint.unix_socket
    assert not sock.exists()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def models_of(endpoint: BackendEndpoint) -> Any:
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    async with (
        session_for(endpoint) as session,
        session.get(f"{endpoint.base_url}/v1/models", headers=headers) as response,
    ):
        return await response.json()


@pytest.mark.parametrize("gpu_index", [None, 1])
async def test_the_child_gets_the_launch_and_only_its_gpu(
    tmp_path: Path, gpu_index: int | None
) -> None:
    async with supervised(tmp_path, gpu_index=gpu_index) as (supervisor, _):
        launch = (await models_of(await supervisor.wait_ready()))["launch"]
        assert supervisor.status.value.gpu_index == gpu_index
    assert launch == {
        "ctx": 512,
        "parallel": 2,
        "threads": 1,
        "batch": 64,
        "model": str(MODEL),
        "gpu_layers": 0 if gpu_index is None else -1,
        # CPU engines see no GPU at all; a GPU engine sees exactly its own.
        "cuda_visible_devices": "" if gpu_index is None else "1",
    }
    tag = "cpu" if gpu_index is None else "gpu1"
    assert (tmp_path / "logs" / f"engine-{tag}.log").is_file()


async def test_drain_keeps_the_endpoint_until_stopped(tmp_path: Path) -> None:
    async with supervised(tmp_path) as (supervisor, seen):
        endpoint = await supervisor.wait_ready()
        await supervisor.drain()
        assert supervisor.status.value.state == "draining"
        assert supervisor.endpoint == endpoint
    assert [s.state for s in seen][-3:] == ["ready", "draining", "stopped"]


async def test_wait_ready_before_start_is_an_error(tmp_path: Path) -> None:
    supervisor = EngineSupervisor(launch_for(), run_dir=tmp_path, log_dir=tmp_path, sandbox=BASIC)
    with pytest.raises(EngineStartError, match="not running"):
        await supervisor.wait_ready()
    await supervisor.aclose()


# -- bad model files -------------------------------------------------------------------------------


async def test_missing_model_file_fails_without_starting_anything(tmp_path: Path) -> None:
    async with supervised(tmp_path, model=tmp_path / "absent.gguf") as (supervisor, seen):
        with pytest.raises(EngineStartError, match="does not exist"):
            await supervisor.wait_ready()
        assert [s.state for s in seen] == ["failed"]
        assert new_children(tmp_path) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"this is not a model", "is not a GGUF model file"), (None, "incomplete")],
)
async def test_corrupt_or_truncated_model_fails_with_a_clear_reason(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(content if content is not None else MODEL.read_bytes()[:3_000_000])
    async with supervised(tmp_path, model=model) as (supervisor, _):
        status = await until(supervisor, lambda s: s.state == "failed")
        assert message in status.reason
        assert new_children(tmp_path) == []


def test_model_bigger_than_memory_is_refused_before_launch() -> None:
    model = load_catalog().get("Qwen/Qwen3-8B")
    small = HardwareBudget(gpus=(), ram_total_bytes=4 * GIB, cpu_cores=4, cpu_threads=8)
    with pytest.raises(ModelTooLargeError, match="needs about"):
        plan_launch(model, MODEL, small, gpu_index=None)


# -- engines that misbehave ------------------------------------------------------------------------


@pytest.mark.allow_log_warnings
@pytest.mark.slow
async def test_crash_on_start_fails_after_the_restart_budget(tmp_path: Path) -> None:
    policy = RestartPolicy(initial_delay=0.0, max_failures=1)
    async with supervised(tmp_path, "crash-on-start", policy=policy) as (supervisor, seen):
        with pytest.raises(EngineStartError) as err:
            await supervisor.wait_ready()
        status = supervisor.status.value
        assert status.state == "failed"
        assert status.restarts == 1
        assert "exited with code 3 while starting" in status.reason
        assert "failed to load model: unsupported tensor type" in status.reason
        assert "gave up after 2 failures in a row" in status.reason
        assert err.value.message == status.reason
        states = [s.state for s in seen]
        assert states == ["starting", "crashed", "starting", "failed"]


@pytest.mark.allow_log_warnings
@pytest.mark.slow
async def test_engine_that_never_becomes_ready_times_out(tmp_path: Path) -> None:
    timeouts = EngineTimeouts(start=1.0, stop_grace=5.0)
    async with supervised(tmp_path, "hang", timeouts=timeouts) as (supervisor, _):
        status = await until(supervisor, lambda s: s.state == "failed")
        assert "did not become ready within 1 s" in status.reason
        assert new_children(tmp_path) == []


async def test_closing_while_the_engine_starts_returns_at_once(tmp_path: Path) -> None:
    async with supervised(tmp_path, "hang") as (supervisor, seen):
        assert supervisor.status.value.state == "starting"
    assert [s.state for s in seen] == ["starting", "stopped"]
    assert new_children(tmp_path) == []


@pytest.mark.allow_log_warnings
@pytest.mark.slow
async def test_engine_dying_mid_request_errors_the_request_and_restarts(tmp_path: Path) -> None:
    async with supervised(tmp_path, "die-mid-request", policy=QUICK_RESTART) as (supervisor, _):
        endpoint = await supervisor.wait_ready()
        body = {"model": NAME, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        async with session_for(endpoint) as session:
            headers = {"Authorization": f"Bearer {endpoint.api_key}"}
            url = f"{endpoint.base_url}/v1/chat/completions"
            async with asyncio.timeout(30), session.post(url, json=body, headers=headers) as r:
                assert r.status == 200
                with pytest.raises(aiohttp.ClientError):
                    await r.read()
        crashed = await until(supervisor, lambda s: s.state == "crashed")
        assert "exited with code 7 unexpectedly" in crashed.reason
        assert crashed.endpoint is None
        again = await until(supervisor, lambda s: s.state == "ready")
        assert again.restarts == 1
        assert again.endpoint is not None
        assert again.endpoint.api_key != endpoint.api_key  # a fresh key per run


@pytest.mark.allow_log_warnings
@pytest.mark.slow
async def test_crash_after_ready_restarts_with_backoff(tmp_path: Path) -> None:
    policy = QUICK_RESTART
    async with supervised(tmp_path, "crash-once-after-ready", policy=policy) as (supervisor, seen):
        status = await until(supervisor, lambda s: s.state == "ready" and s.restarts == 1)
        assert status.endpoint is not None
        assert await chat(status.endpoint, status.endpoint.api_key) == 200
        crash = next(s for s in seen if s.state == "crashed")
        assert "exited with code 9" in crash.reason
        assert "simulated fatal error after start" in crash.reason


@pytest.mark.allow_log_warnings
@pytest.mark.slow
async def test_engine_that_stops_answering_is_declared_hung(tmp_path: Path) -> None:
    # stop_grace short: the stalled request keeps the fake from exiting on SIGTERM.
    timeouts = EngineTimeouts(
        start=30, health_interval=0.1, health_timeout=0.3, health_failures=2, stop_grace=0.5
    )
    async with supervised(tmp_path, "stall-health", timeouts=timeouts) as (supervisor, seen):
        status = await until(supervisor, lambda s: s.state == "failed")
        assert "stopped answering health checks" in status.reason
        assert "ready" in [s.state for s in seen]


@pytest.mark.allow_log_warnings
@pytest.mark.slow
async def test_stop_kills_the_whole_tree_of_an_engine_ignoring_sigterm(tmp_path: Path) -> None:
    timeouts = EngineTimeouts(start=30, stop_grace=0.5)
    async with supervised(tmp_path, "ignore-sigterm", timeouts=timeouts) as (supervisor, _):
        await supervisor.wait_ready()
        pid = supervisor.status.value.pid
        assert pid is not None
        for _ in range(200):  # the grandchild is spawned just after the ready line
            tree = tree_of(pid)
            if len(tree) >= 2:
                break
            await asyncio.sleep(0.05)
        assert len(tree) >= 2
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == []
    assert supervisor.status.value.state == "stopped"


@pytest.mark.allow_log_warnings
async def test_missing_engine_program_fails_with_the_reason(tmp_path: Path) -> None:
    program = [str(tmp_path / "no-such-engine")]
    async with supervised(tmp_path, program=program) as (supervisor, _):
        status = await until(supervisor, lambda s: s.state == "failed")
        assert "exited with code 1 while starting" in status.reason
        assert "FileNotFoundError" in status.reason
