"""``EngineSupervisor``: runs one sandboxed engine child (one per GPU), watches it, restarts it.

The child is ``python -m app.engine.server`` (or any program with the same command-line contract).
Readiness and health are ``GET /v1/models`` over the child's Unix socket (strong sandbox) or its
loopback port with a per-run API key (basic). Crashes restart with truncated exponential backoff;
too many failures in a row end in ``failed`` with the last reason. Stopping is graceful (SIGTERM to
the engine, which finishes in-flight requests) and then forceful (SIGKILL of the whole tree).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import aiohttp

from app.core.atomic import write_private_atomic
from app.core.errors import UserFacingError
from app.core.observable import Observable
from app.engine.endpoint import BackendEndpoint
from app.engine.engine_child import (
    ChildFailedError,
    EngineChild,
    engine_log_handler,
    exit_reason,
    read_stderr,
    read_stdout,
)
from app.engine.gguf import ModelFileError, read_gguf_info
from app.engine.sandbox import (
    ResourceLimits,
    SandboxLevel,
    SandboxReport,
    engine_env,
    kill_tree,
    process_limit,
    process_tree,
    sandbox_command,
    terminate_leaves,
)
from app.engine.server.launcher import launch_args
from app.engine.sizing import EngineLaunch

_log = logging.getLogger(__name__)

EngineState = Literal["stopped", "starting", "ready", "draining", "crashed", "failed"]
ENGINE_PROGRAM: tuple[str, ...] = (sys.executable, "-m", "app.engine.server")
_SOCKET_NAME = "engine.sock"
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


class EngineStartError(UserFacingError):
    """The engine could not be started (bad model file, crash on start, never became ready)."""


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """What the UI and the worker see. ``endpoint`` is set exactly while ``state == "ready"``."""

    state: EngineState = "stopped"
    reason: str = ""
    pid: int | None = None
    sandbox: SandboxLevel | None = None
    model: str = ""
    gpu_index: int | None = None
    restarts: int = 0
    endpoint: BackendEndpoint | None = None


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Backoff ``initial_delay × 2^(n-1)`` capped at ``max_delay``; ``max_failures`` in a row (no
    stable run of ``stable_after`` seconds between them) end in ``failed``."""

    initial_delay: float = 1.0
    max_delay: float = 60.0
    max_failures: int = 5
    stable_after: float = 120.0


@dataclass(frozen=True, slots=True)
class EngineTimeouts:
    start: float = 300.0  # loading a 14 B model from a slow disk takes minutes
    health_interval: float = 5.0
    health_timeout: float = 10.0  # what COCOON's own backend monitor allows
    health_failures: int = 3
    stop_grace: float = 10.0  # the server finishes in-flight requests within a few seconds


class EngineSupervisor:
    """Owns one engine child for ``launch`` (its GPU, or the CPU); publishes :class:`EngineStatus`.

    ``start()`` checks the model file and returns at once; the child starts in the background
    (await :meth:`wait_ready` for the endpoint). ``aclose()`` drains and stops it.
    """

    def __init__(
        self,
        launch: EngineLaunch,
        *,
        run_dir: Path,
        log_dir: Path,
        sandbox: SandboxReport,
        program: Sequence[str] = ENGINE_PROGRAM,
        extra_read_only: Sequence[Path] = (),
        policy: RestartPolicy | None = None,
        timeouts: EngineTimeouts | None = None,
    ) -> None:
        self._launch = launch
        self._run_dir = run_dir
        self._sandbox = sandbox
        self._program = tuple(program)
        self._extra_ro = tuple(extra_read_only)
        self._policy = policy or RestartPolicy()
        self._timeouts = timeouts or EngineTimeouts()
        self._tag = "cpu" if launch.gpu_index is None else f"gpu{launch.gpu_index}"
        self._log_file = log_dir / f"engine-{self._tag}.log"
        self._engine_log: logging.Handler | None = None
        self._sock_dir: Path | None = None
        self._api_key: str | None = None
        self.status: Observable[EngineStatus] = Observable(
            EngineStatus(sandbox=sandbox.level, model=launch.model_name, gpu_index=launch.gpu_index)
        )
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    @property
    def endpoint(self) -> BackendEndpoint | None:
        """Where the worker sends requests; ``None`` unless the engine is ready."""
        return self.status.value.endpoint

    async def start(self) -> None:
        if self._task is not None:
            return
        self._engine_log = engine_log_handler(self._log_file)
        try:
            await asyncio.wait_for(asyncio.to_thread(read_gguf_info, self._launch.model_path), 60)
        except ModelFileError as exc:
            self._publish("failed", exc.message)
            return
        # Published before the task runs, so a wait_ready() right after start() sees "starting".
        self._publish("starting", "")
        self._task = asyncio.create_task(self._supervise(), name=f"engine {self._tag}")

    async def wait_ready(self) -> BackendEndpoint:
        """The endpoint once ready; :class:`EngineStartError` if the engine failed or stopped.

        Bounded by the start timeout and the restart policy; wrap it in ``asyncio.timeout`` to
        wait less.
        """
        done = asyncio.Event()

        def check(status: EngineStatus) -> None:
            if status.state in ("ready", "failed", "stopped"):
                done.set()

        unsubscribe = self.status.subscribe(check, replay=True)
        try:
            if self._task is None and self.status.value.state == "stopped":
                raise EngineStartError("The engine is not running.")
            await done.wait()
        finally:
            unsubscribe()
        status = self.status.value
        if status.state != "ready" or status.endpoint is None:
            raise EngineStartError(
                status.reason or "The engine stopped.", hint="See the engine log for details."
            )
        return status.endpoint

    async def drain(self) -> None:
        """Announce that no new requests should come (the worker reacts to ``draining``)."""
        if self.status.value.state == "ready":
            self._publish("draining", "Stopping after the running requests.", keep_endpoint=True)

    async def aclose(self) -> None:
        """Drain, stop the child (SIGTERM, then SIGKILL of its tree) and publish ``stopped``."""
        self._closing.set()
        if self._task is not None:
            await self._task
        if self.status.value.state != "failed":
            self._publish("stopped", "")
        if self._sock_dir is not None and self._sock_dir.parent != self._run_dir:
            shutil.rmtree(self._sock_dir, ignore_errors=True)  # the short temp folder
        if self._engine_log is not None:
            self._engine_log.close()
            self._engine_log = None

    # -- the supervision loop -----------------------------------------------------------------

    async def _supervise(self) -> None:
        try:
            await self._supervise_loop()
        except Exception:  # a bug here must still end in a visible state, not a silent stall
            _log.exception("engine %s supervisor failed", self._tag)
            self._publish("failed", "The engine supervisor failed; see the app log.")

    async def _supervise_loop(self) -> None:
        failures, restarts = 0, 0
        while not self._closing.is_set():
            self._publish("starting", "", restarts=restarts)
            started = None
            try:
                child = await self._spawn()
                try:
                    if not await self._wait_until_ready(child):
                        return  # closing while it started
                    started = time.monotonic()
                    self._publish(
                        "ready", "", restarts=restarts, pid=child.proc.pid, endpoint=child.endpoint
                    )
                    await self._watch(child)
                finally:
                    await self._stop_child(child)
            except ChildFailedError as exc:
                reason = str(exc)
            except OSError as exc:
                reason = f"The engine could not be started: {exc.strerror or exc}."
            else:
                return  # closing
            if self._closing.is_set():
                return
            if started is not None and time.monotonic() - started >= self._policy.stable_after:
                failures = 0
            failures += 1
            _log.warning("engine %s: %s", self._tag, reason)
            if failures > self._policy.max_failures:
                self._publish(
                    "failed",
                    f"{reason} (gave up after {failures} failures in a row)",
                    restarts=restarts,
                )
                return
            self._publish("crashed", reason, restarts=restarts)
            delay = min(self._policy.initial_delay * 2 ** (failures - 1), self._policy.max_delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            restarts += 1

    async def _spawn(self) -> EngineChild:
        socket_dir = self._socket_dir()
        listen, endpoint = self._listen_args(socket_dir)
        argv = sandbox_command(
            self._sandbox,
            [*self._program, *self._engine_args(), *listen],
            read_only=(self._launch.model_path, *self._extra_ro),
            read_write=(socket_dir,),
            limits=ResourceLimits(
                address_space=self._launch.address_space_limit,
                processes=await asyncio.wait_for(asyncio.to_thread(process_limit), 30),
            ),
            gpu=self._launch.gpu_index is not None,
        )
        gpus = "" if self._launch.gpu_index is None else str(self._launch.gpu_index)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=engine_env({"CUDA_VISIBLE_DEVICES": gpus}),
            start_new_session=True,
        )
        child = EngineChild(proc=proc, endpoint=endpoint)
        child.readers = [
            asyncio.create_task(
                read_stdout(child, api_key=self._api_key, capacity=self._launch.parallel),
                name=f"engine {self._tag} stdout",
            ),
            asyncio.create_task(
                read_stderr(child, self._engine_log), name=f"engine {self._tag} stderr"
            ),
        ]
        _log.info(
            "engine %s started (pid %d, %s sandbox)", self._tag, proc.pid, self._sandbox.level
        )
        return child

    def _listen_args(self, socket_dir: Path) -> tuple[list[str], BackendEndpoint | None]:
        """The child's listen options, and the endpoint if it is known before the child starts."""
        if self._sandbox.level is SandboxLevel.STRONG:
            sock = socket_dir / _SOCKET_NAME
            sock.unlink(missing_ok=True)
            endpoint = BackendEndpoint(
                base_url="http://engine", unix_socket=sock, capacity=self._launch.parallel
            )
            return ["--uds", str(sock)], endpoint
        # A fresh key per run: a key that leaked from an earlier run is useless now.
        self._api_key = secrets.token_urlsafe(32)
        key_file = socket_dir / "api-key"
        write_private_atomic(key_file, self._api_key.encode())
        # Port 0: the child binds a free port itself and announces it (no race for the port).
        return ["--host", "127.0.0.1", "--port", "0", "--api-key-file", str(key_file)], None

    def _engine_args(self) -> list[str]:
        return [*launch_args(self._launch), "--alias", self._launch.model_name]

    def _socket_dir(self) -> Path:
        """The child's only writable folder (socket, API key file); made once per supervisor."""
        if self._sock_dir is None:
            folder = self._run_dir / f"engine-{self._tag}"
            if len(str(folder / _SOCKET_NAME)) > _MAX_SOCKET_PATH:
                # A deep data folder would overflow sun_path; a private temp folder is short.
                folder = Path(tempfile.mkdtemp(prefix=f"cocoon-{self._tag}-"))
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._sock_dir = folder
        return self._sock_dir

    async def _wait_until_ready(self, child: EngineChild) -> bool:
        """True once ``/v1/models`` answers; False if closing; raises if it dies or times out."""
        deadline = time.monotonic() + self._timeouts.start
        exited = asyncio.ensure_future(child.proc.wait())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            while time.monotonic() < deadline:
                if child.endpoint is not None and await self._healthy(child.endpoint, 5.0):
                    return True
                announced = asyncio.ensure_future(child.ready.wait())
                # The socket is polled every 0.25 s; the "ready" line cuts the wait short.
                await asyncio.wait(
                    {exited, announced, closing}, timeout=0.25, return_when=asyncio.FIRST_COMPLETED
                )
                announced.cancel()
                if closing.done():
                    return False
                if exited.done():
                    raise ChildFailedError(await exit_reason(child, "while starting"))
            raise ChildFailedError(
                f"The engine did not become ready within {self._timeouts.start:.0f} s."
            )
        finally:
            exited.cancel()
            closing.cancel()

    async def _watch(self, child: EngineChild) -> None:
        """Return when closing; raise :class:`ChildFailedError` when the child dies or hangs."""
        exited = asyncio.ensure_future(child.proc.wait())
        closing = asyncio.ensure_future(self._closing.wait())
        misses = 0
        try:
            while True:
                await asyncio.wait(
                    {exited, closing},
                    timeout=self._timeouts.health_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if closing.done():
                    return
                if exited.done():
                    raise ChildFailedError(await exit_reason(child, "unexpectedly"))
                endpoint = child.endpoint
                healthy = endpoint is not None and await self._healthy(
                    endpoint, self._timeouts.health_timeout
                )
                misses = 0 if healthy else misses + 1
                if misses >= self._timeouts.health_failures:
                    raise ChildFailedError("The engine stopped answering health checks (hung).")
        finally:
            exited.cancel()
            closing.cancel()

    async def _healthy(self, endpoint: BackendEndpoint, limit: float) -> bool:
        connector: aiohttp.BaseConnector = (
            aiohttp.UnixConnector(path=str(endpoint.unix_socket))
            if endpoint.unix_socket is not None
            else aiohttp.TCPConnector()
        )
        headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        try:
            async with (
                aiohttp.ClientSession(
                    connector=connector, timeout=aiohttp.ClientTimeout(total=limit)
                ) as session,
                session.get(f"{endpoint.base_url}/v1/models", headers=headers) as resp,
            ):
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def _stop_child(self, child: EngineChild) -> None:
        proc = child.proc
        if proc.returncode is None:
            if self.status.value.state == "ready":
                self._publish("draining", "Stopping.", keep_endpoint=True)
            tree = process_tree(proc.pid)
            terminate_leaves(tree)
            try:
                await asyncio.wait_for(proc.wait(), self._timeouts.stop_grace)
            except TimeoutError:
                _log.warning("engine %s ignored SIGTERM; killing it", self._tag)
            kill_tree(tree)  # also whatever the engine left behind
            await proc.wait()
        # Pipes close when the tree is gone; bounded anyway (a process that escaped the tree).
        await asyncio.wait(child.readers, timeout=2.0)
        for reader in child.readers:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        _remove_run_files(self._socket_dir())

    def _publish(
        self, state: EngineState, reason: str, *, keep_endpoint: bool = False, **changes: Any
    ) -> None:
        current = self.status.value
        endpoint = changes.pop("endpoint", current.endpoint if keep_endpoint else None)
        pid = changes.pop("pid", current.pid if state in ("ready", "draining") else None)
        self.status.set(
            replace(current, state=state, reason=reason, endpoint=endpoint, pid=pid, **changes)
        )


def _remove_run_files(folder: Path) -> None:
    for name in (_SOCKET_NAME, "api-key"):
        (folder / name).unlink(missing_ok=True)
