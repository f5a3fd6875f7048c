"""``cocoon-provider gui``: the desktop app; falls back to headless when there is no display."""

from __future__ import annotations

import argparse
from typing import Any

from app.cli.context import CliContext
from app.cli.launch import launch


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
