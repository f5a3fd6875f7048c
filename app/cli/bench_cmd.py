"""`cocoon-provider bench`: placeholder until its issue lands."""

from __future__ import annotations

import argparse
from typing import Any

from app.cli.unavailable import not_available


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("bench", help="bench (not available yet)")
    parser.set_defaults(handler=not_available("bench"))
