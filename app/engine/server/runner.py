"""Runs the engine child: load the model, listen, announce readiness, stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from typing import Any

from aiohttp import web

from app import __version__
from app.engine.server.batcher import Batcher
from app.engine.server.http_api import ENGINE_NAME, ApiConfig, OpenAiApi
from app.engine.server.model import ContextShape, LlamaModel
from app.engine.server.options import ServerOptions, read_api_key

_log = logging.getLogger(__name__)


async def serve(options: ServerOptions) -> int:
    """Serve until SIGTERM or SIGINT; in-flight requests get ``options.shutdown_grace`` seconds.

    Returns the exit status: 0 after a requested stop, 1 when the decode loop failed (so that
    the supervisor restarts a fresh engine).
    """
    api_key = read_api_key(options.api_key_file) if options.api_key_file is not None else None
    shape = ContextShape(
        ctx=options.ctx,
        parallel=options.parallel,
        batch=options.batch,
        threads=options.threads,
        gpu_layers=options.gpu_layers,
    )
    model = await asyncio.to_thread(LlamaModel, options.model, shape)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    failed = asyncio.Event()

    def on_failure() -> None:
        failed.set()
        stop.set()

    batcher = Batcher(model, loop, options.max_queue, on_failure=on_failure)
    batcher.start()
    config = ApiConfig(
        model_alias=options.model_alias,
        model_file_name=options.model.name,
        ctx=options.ctx,
        max_body_bytes=options.max_body_bytes,
        api_key=api_key,
    )
    runner = web.AppRunner(
        OpenAiApi(model, batcher, config).build_app(),
        handler_cancellation=True,  # a client that hangs up cancels its handler → frees the slot
        access_log=None,
        shutdown_timeout=options.shutdown_grace + 1.0,
    )
    await runner.setup()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = await _listen(runner, options)
        _announce(options, site)
        await stop.wait()
        _log.info("stopping: no new requests; finishing the running ones")
        await site.stop()
        await batcher.shutdown(options.shutdown_grace)
    finally:
        await runner.cleanup()
        await batcher.shutdown(0)
        model.close()
        if options.uds is not None:
            with contextlib.suppress(FileNotFoundError):
                options.uds.unlink()
    return 1 if failed.is_set() else 0


async def _listen(runner: web.AppRunner, options: ServerOptions) -> web.BaseSite:
    site: web.BaseSite
    if options.uds is not None:
        with contextlib.suppress(FileNotFoundError):
            options.uds.unlink()  # a stale socket of a previous run
        old_umask = os.umask(0o177)  # the socket is born 0600: only this user may connect
        try:
            site = web.UnixSite(runner, str(options.uds))
            await site.start()
        finally:
            os.umask(old_umask)
    else:
        site = web.TCPSite(runner, options.host, options.port, reuse_address=True)
        await site.start()
    return site


def _announce(options: ServerOptions, site: web.BaseSite) -> None:
    event: dict[str, Any] = {
        "event": "ready",
        "parallel": options.parallel,
        "ctx": options.ctx,
        "model": options.model_alias,
        "engine": ENGINE_NAME,
        "version": __version__,
        "pid": os.getpid(),
    }
    if options.uds is not None:
        event["uds"] = str(options.uds)
    else:
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        event["host"] = options.host
        event["port"] = sockets[0].getsockname()[1] if sockets else options.port
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()
