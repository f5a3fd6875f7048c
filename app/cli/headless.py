"""The headless runner: start the services, print a status line periodically, stop on signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from typing import TextIO

from app.bootstrap import Services
from app.core.errors import UserFacingError

_log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def run_headless(
    services: Services,
    *,
    status_interval: float = 5.0,
    out: TextIO | None = None,
    earn: bool = False,
    password: Callable[[], str | None] = lambda: None,
) -> int:
    """Serve until SIGINT/SIGTERM, then stop every service; returns the process exit status.

    With ``earn``, earning starts right away; if it cannot start, the reason is printed and the
    exit status is 1 (a service manager can then restart the worker or alert its operator).
    """
    stream = out or sys.stdout
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows / non-main thread
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        banner = f"cocoon-provider headless · network {services.network}"
        print(f"{banner} · data {services.paths.data_dir}", file=stream, flush=True)
        await services.start()
        if earn:
            try:
                setup = await services.prepare_wallets(password)
            except UserFacingError as exc:
                print(f"Error: could not start earning: {exc.describe()}", file=stream, flush=True)
                return 1
            for line in setup.lines():
                print(line, file=stream, flush=True)
            starting = asyncio.create_task(services.earning.start_earning())
            if await _finished_first(starting, stop) and starting.exception() is not None:
                error = starting.exception()
                reason = error.describe() if isinstance(error, UserFacingError) else str(error)
                print(f"Error: could not start earning: {reason}", file=stream, flush=True)
                return 1
        print(services.status_line(), file=stream, flush=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), status_interval)
            if not stop.is_set():
                print(services.status_line(), file=stream, flush=True)
        print("stopping…", file=stream, flush=True)
        return 0
    finally:
        await services.aclose()
        for sig in installed:
            loop.remove_signal_handler(sig)
        print("stopped", file=stream, flush=True)


async def _finished_first(task: asyncio.Task[None], stop: asyncio.Event) -> bool:
    """Wait for ``task`` or a stop request; True if the task finished, else it is cancelled."""
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task not in done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return False
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    return True
