"""The headless runner: start the services, print a status line periodically, stop on signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import TextIO

from app.bootstrap import Services

_log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def run_headless(
    services: Services, *, status_interval: float = 5.0, out: TextIO | None = None
) -> int:
    """Serve until SIGINT/SIGTERM, then stop every service; returns the process exit status."""
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
