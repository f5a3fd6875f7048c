"""Starting the engine child from the parent: its argv, the ready line, and stopping it.

The long-lived engine is ``EngineSupervisor``'s (it adds the sandbox, restarts and logs); this is
the short-lived launch the benchmark uses, and the reference for the command-line contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import UserFacingError
from app.engine.endpoint import BackendEndpoint
from app.engine.sizing import EngineLaunch

READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 10.0


class EngineStartError(UserFacingError):
    """The engine child exited or stayed silent instead of announcing that it is ready."""


@dataclass(frozen=True, slots=True)
class ReadyEvent:
    """The child's ``{"event": "ready", ...}`` line."""

    parallel: int
    ctx: int
    model: str
    engine: str
    version: str
    raw: dict[str, Any]


def launch_args(launch: EngineLaunch) -> list[str]:
    """``launch``'s model file and sizes as the child's options (where it listens comes apart)."""
    return [
        "--model",
        str(launch.model_path),
        "--ctx",
        str(launch.context_length),
        "--parallel",
        str(launch.parallel),
        "--threads",
        str(launch.threads),
        "--gpu-layers",
        str(launch.gpu_layers),
        "--batch",
        str(launch.batch_size),
    ]


def engine_argv(launch: EngineLaunch, socket_path: Path, *, alias: str | None = None) -> list[str]:
    """The child's command line for ``launch``, listening on ``socket_path``."""
    argv = [sys.executable, "-m", "app.engine.server", *launch_args(launch)]
    argv += ["--uds", str(socket_path)]
    if alias:
        argv += ["--alias", alias]
    return argv


def parse_ready(line: bytes) -> ReadyEvent:
    """Decode the ready line; :class:`EngineStartError` when it is something else."""
    try:
        event = json.loads(line)
        if not isinstance(event, dict) or event.get("event") != "ready":
            raise ValueError("not a ready event")
        return ReadyEvent(
            parallel=int(event["parallel"]),
            ctx=int(event["ctx"]),
            model=str(event["model"]),
            engine=str(event["engine"]),
            version=str(event["version"]),
            raw=event,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise EngineStartError("The inference engine sent an unexpected start-up message.") from exc


@contextlib.asynccontextmanager
async def launched_engine(
    launch: EngineLaunch, run_dir: Path, *, stderr_log: Path | None = None
) -> AsyncIterator[tuple[BackendEndpoint, ReadyEvent]]:
    """Run the engine child for the duration of the block; SIGTERM (then SIGKILL) on exit.

    ``run_dir`` (the data dir's private ``run/`` folder) must exist; the socket is made there.
    """
    socket_path = run_dir / f"bench-{os.getpid()}.sock"
    env = dict(os.environ)
    if launch.gpu_index is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(launch.gpu_index)
    with contextlib.ExitStack() as files:
        err = (
            files.enter_context(stderr_log.open("ab")) if stderr_log else asyncio.subprocess.DEVNULL
        )
        proc = await asyncio.create_subprocess_exec(
            *engine_argv(launch, socket_path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            env=env,
            start_new_session=True,
        )
        try:
            ready = await _wait_ready(proc)
            endpoint = BackendEndpoint(
                base_url="http://engine", unix_socket=socket_path, capacity=ready.parallel
            )
            yield endpoint, ready
        finally:
            await _stop(proc)


async def _wait_ready(proc: asyncio.subprocess.Process) -> ReadyEvent:
    assert proc.stdout is not None  # noqa: S101 - created with stdout=PIPE just above
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT_S)
    except TimeoutError:
        raise EngineStartError(
            f"The inference engine did not start within {READY_TIMEOUT_S:.0f} seconds."
        ) from None
    if not line:
        code = await proc.wait()
        raise EngineStartError(
            f"The inference engine stopped during start-up (exit status {code}).",
            hint="See the engine log in the logs folder for the reason.",
        )
    return parse_ready(line)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
