"""``cocoon-provider run``: run the app (``--headless`` for servers without a display)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from app.bootstrap import build_services
from app.cli.context import CliContext
from app.cli.headless import run_headless


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("run", help="run the worker (use --headless on servers)")
    parser.add_argument("--headless", action="store_true", help="no window: log and print status")
    parser.add_argument(
        "--status-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between status lines in headless mode (default 5)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, ctx: CliContext) -> int:
    if not args.headless:
        from app.cli import gui_cmd  # the GUI is only imported when it is used

        return gui_cmd.launch(ctx, smoke_test=False)
    return run_headless_command(ctx, status_interval=args.status_interval)


def run_headless_command(ctx: CliContext, *, status_interval: float = 5.0) -> int:
    services = build_services(ctx.paths, ctx.settings, ctx.network)
    return asyncio.run(run_headless(services, status_interval=status_interval))
