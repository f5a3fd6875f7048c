"""How the CLI gets a password: standard input (``--password-stdin``), the
``COCOON_PROVIDER_PASSWORD`` environment variable (unattended machines), or a prompt at the
terminal. Never an option value: those end up in shell history and process lists."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Final

from app.cli.context import CliUsageError
from app.core.errors import UserFacingError

PASSWORD_ENV: Final = "COCOON_PROVIDER_PASSWORD"  # noqa: S105 - a variable name, not a secret


def read_line(what: str) -> str:
    line = sys.stdin.readline()
    if not line:
        raise CliUsageError(f"Expected the {what} on standard input, but it was empty.")
    return line.rstrip("\r\n")


def has_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def secret_prompt(prompt: str, *, option: str) -> str:
    """Ask at the terminal without echo; without one, say which option reads standard input."""
    if not has_terminal():
        raise CliUsageError(
            f"There is no terminal to ask for the {prompt.split(' (')[0].lower()} at.",
            hint=f"Pass {option} and send it on standard input.",
        )
    try:
        return getpass.getpass(f"{prompt}: ")
    except EOFError as exc:  # the terminal closed while we waited
        raise CliUsageError("No answer was typed.", hint=f"Pass {option} instead.") from exc


def password(from_stdin: bool, *, new: bool, use_env: bool = False) -> str:
    """The wallet password: stdin, then (``use_env``) the environment, then the terminal."""
    if from_stdin:
        return read_line("password")
    if use_env and os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    first = secret_prompt("Wallet password", option="--password-stdin")
    if new and secret_prompt("Repeat the password", option="--password-stdin") != first:
        raise UserFacingError("The two passwords differ.", hint="Nothing was created.")
    return first


def optional_password(from_stdin: bool, *, new: bool = False) -> str | None:
    """A password if one was offered (stdin, environment, or a terminal to ask at), else None;
    ``new`` (a wallet is about to be created with it) asks twice at the terminal."""
    if from_stdin or os.environ.get(PASSWORD_ENV) or has_terminal():
        return password(from_stdin, new=new, use_env=True)
    return None
