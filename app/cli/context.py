"""What every CLI sub-command receives: parsed global options, paths and the settings store."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.errors import UserFacingError
from app.core.paths import AppPaths
from app.core.settings import NetworkName
from app.core.settings_store import SettingsStore


@dataclass(frozen=True, slots=True)
class CliContext:
    """Global state of one CLI invocation; sub-commands must not reach for anything else."""

    paths: AppPaths
    settings: SettingsStore
    network: NetworkName
    log_level: str


class CliUsageError(UserFacingError):
    """A wrong option or combination of options: reported like any error, exit status 2."""
