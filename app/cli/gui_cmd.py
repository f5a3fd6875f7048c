"""``cocoon-provider gui``: the desktop app; falls back to headless when there is no display."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from app.bootstrap import build_services
from app.cli.context import CliContext


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("gui", help="the desktop app (default when a display is available)")
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="start everything offscreen, show the window, then exit 0 (for CI and installers)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, ctx: CliContext) -> int:
    return launch(ctx, smoke_test=args.smoke_test)


def has_display() -> bool:
    """True when Qt can open windows: Windows/macOS, X11, Wayland, or a forced platform."""
    if sys.platform in {"win32", "darwin"}:
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def launch(ctx: CliContext, *, smoke_test: bool) -> int:
    if smoke_test:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    elif not has_display():
        print(
            "No display found: running headless instead (see 'cocoon-provider run --help').",
            file=sys.stderr,
        )
        from app.cli.run_cmd import run_headless_command

        return run_headless_command(ctx)
    from app.ui.gui import run_gui  # Qt is imported only when a window is wanted

    return run_gui(build_services(ctx.paths, ctx.settings, ctx.network), smoke_test=smoke_test)
