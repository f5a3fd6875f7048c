"""The one launch path of ``run`` and ``gui``: the window when there is a display, else headless.

Both modes get the same services from the composition root with the same command-line worker
overrides, so ``cocoon-provider run --proxy … --owner-address …`` keeps its flags whether it ends
up in a window or, with no display, headless.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable

from app.bootstrap import BuildOptions, build_services
from app.cli.context import CliContext
from app.cli.headless import run_headless

DEFAULT_STATUS_INTERVAL_S = 5.0


def has_display() -> bool:
    """True when Qt can open windows: Windows/macOS, X11, Wayland, or a forced platform."""
    if sys.platform in {"win32", "darwin"}:
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def launch(
    ctx: CliContext,
    options: BuildOptions | None = None,
    *,
    headless: bool = False,
    smoke_test: bool = False,
    status_interval: float = DEFAULT_STATUS_INTERVAL_S,
    password: Callable[[], str | None] = lambda: None,
) -> int:
    """Run the app with ``options`` (overrides for this launch only); returns the exit status."""
    services = build_services(ctx.paths, ctx.settings, ctx.network, options)
    services.effective_settings()  # fail fast on bad overrides, before anything starts
    if smoke_test:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    elif not headless and not has_display():
        print(
            "No display found: running headless instead (see 'cocoon-provider run --help').",
            file=sys.stderr,
        )
        headless = True
    if headless:
        return asyncio.run(
            run_headless(services, status_interval=status_interval, earn=True, password=password)
        )
    from app.ui.gui import run_gui  # Qt is imported only when a window is wanted

    return run_gui(services, smoke_test=smoke_test)
