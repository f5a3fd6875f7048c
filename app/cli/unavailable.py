"""The shared answer of sub-commands that this build does not provide yet (exit status 2)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from app.cli.context import CliContext

EXIT_NOT_AVAILABLE = 2

Handler = Callable[[argparse.Namespace, CliContext], int]


def not_available(feature: str) -> Handler:
    """A handler that explains ``feature`` is not in this build and exits with status 2."""

    def handler(args: argparse.Namespace, ctx: CliContext) -> int:
        del args, ctx
        print(
            f"'{feature}' is not available yet in this version of cocoon-provider.", file=sys.stderr
        )
        return EXIT_NOT_AVAILABLE

    return handler
