"""``cocoon-provider`` argument parsing and dispatch to one module per sub-command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from app import __version__
from app.cli import (
    bench_cmd,
    devnet_cmd,
    doctor_cmd,
    earnings_cmd,
    gui_cmd,
    models_cmd,
    run_cmd,
    support_cmd,
    wallet_cmd,
)
from app.cli.context import CliContext, CliUsageError
from app.core.errors import UserFacingError
from app.core.logs import FILE_ONLY, configure_logging, redact
from app.core.paths import AppPaths, default_data_dir
from app.core.settings_store import SettingsStore

_log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace, CliContext], int]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

_COMMANDS = (
    gui_cmd,
    run_cmd,
    devnet_cmd,
    bench_cmd,
    doctor_cmd,
    earnings_cmd,
    models_cmd,
    wallet_cmd,
    support_cmd,
)


class _Parser(argparse.ArgumentParser):
    """argparse with the app's error format: one ``Error:`` line and where to read more."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            EXIT_USAGE,
            f"Error: {message[:1].upper()}{message[1:]}.\n"
            f"See '{self.prog} --help' for what it takes.\n",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cocoon-provider",
        description="Earn TON by serving AI inference on the COCOON network with your GPU.",
        epilog="With no command, the desktop app starts (or the headless worker if there is no "
        "display). The default network is the built-in local test network.",
    )
    _add_global_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMANDS:
        module.register(sub)
    _add_global_options_to_subcommands(parser)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options that work before or after any sub-command.

    Sub-commands get them with ``SUPPRESS`` defaults, so a value given after the sub-command
    overrides one given before it and an absent one leaves the earlier value alone: the later
    occurrence wins, as people expect.
    """

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--version", action="version", version=f"cocoon-provider {__version__}")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default(None),
        help="where settings, logs, wallets and models live (default: the per-user data folder)",
    )
    parser.add_argument(
        "--network",
        choices=("devnet", "testnet", "mainnet", "custom"),
        default=default(None),
        help="network to use (default: from settings, initially 'devnet', the local test network)",
    )
    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        type=str.upper,
        default=default("INFO"),
        help="how much to log (default: INFO)",
    )


def _add_global_options_to_subcommands(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:  # argparse keeps sub-parsers only here
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_global_options(child, defaults=False)
                _add_global_options_to_subcommands(child)


def main(argv: Sequence[str] | None = None, *, stderr: TextIO | None = None) -> int:
    """Parse ``argv``, set up paths, logging and settings, then run the chosen sub-command."""
    err = stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "gui"])
    handler: Handler = args.handler
    paths = AppPaths((args.data_dir or default_data_dir()).expanduser().resolve())
    try:
        paths.ensure()
        configure_logging(
            paths.log_file, args.log_level, stream=err if _logs_to_stderr(args) else None
        )
        store = SettingsStore.load(paths.settings_file)
        for notice in store.notices:
            print(f"Note: {notice.message}", file=err)
        network = args.network or store.current.value.general.network
        ctx = CliContext(paths=paths, settings=store, network=network, log_level=args.log_level)
        return handler(args, ctx)
    except UserFacingError as exc:
        print(f"Error: {exc.describe()}", file=err)
        return EXIT_USAGE if isinstance(exc, CliUsageError) else EXIT_ERROR
    except OSError as exc:
        print(f"Error: {exc.strerror or exc} ({exc.filename or paths.data_dir})", file=err)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # people get one line; the log file gets the traceback
        _log.exception("unexpected error in %r", args.command, extra=FILE_ONLY)
        print(f"Error: {type(exc).__name__}: {redact(str(exc))}", file=err)
        print(
            f"This is a bug in cocoon-provider. The details are in {paths.log_file}; "
            "`cocoon-provider doctor` shows what to include in a report.",
            file=err,
        )
        return EXIT_ERROR


def _logs_to_stderr(args: argparse.Namespace) -> bool:
    # Machine-readable output (--json) keeps stderr for real errors only.
    return not getattr(args, "json", False) and os.environ.get("COCOON_PROVIDER_QUIET_LOGS") != "1"
