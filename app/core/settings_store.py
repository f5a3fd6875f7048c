"""Loading, migrating and atomically saving ``settings.toml``; publishes the current settings."""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from app.core.atomic import write_private_atomic
from app.core.errors import SettingsError
from app.core.observable import Observable
from app.core.settings import (
    SCHEMA_VERSION,
    Settings,
    settings_from_dict,
    settings_to_dict,
    validate,
)

_log = logging.getLogger(__name__)

Migration = Callable[[dict[str, Any]], dict[str, Any]]


def _migrate_v1_to_v2(old: dict[str, Any]) -> dict[str, Any]:
    """v1 kept one proxy and a float coefficient under ``[network]``; v2 has ``[worker]``.

    v1 ``network.proxy = "h:p"`` → ``worker.proxies = ["h:p"]``; ``network.coefficient = 1.5``
    (a multiplier) → ``worker.coefficient = 1500`` (×1000 as the COCOON protocol carries it);
    ``network.owner_address`` moves as is; ``general.network`` is new and defaults to devnet.
    """
    new = {k: v for k, v in old.items() if k not in {"network", "schema_version"}}
    legacy = old.get("network", {})
    if not isinstance(legacy, dict):
        raise SettingsError("Settings key 'network' must be a table (section).")
    worker: dict[str, Any] = dict(new.get("worker", {}))
    for key, value in legacy.items():
        if key == "proxy":
            worker["proxies"] = [value] if value else []
        elif key == "coefficient":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SettingsError("Settings key 'network.coefficient' must be a number.")
            worker["coefficient"] = round(value * 1000)
        else:
            worker[key] = value
    if worker:
        new["worker"] = worker
    new["schema_version"] = 2
    return new


MIGRATIONS: dict[int, Migration] = {1: _migrate_v1_to_v2}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a loaded mapping up to :data:`SCHEMA_VERSION`, one version step at a time."""
    version = data.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SettingsError(f"'schema_version' must be a positive whole number, got {version!r}.")
    if version > SCHEMA_VERSION:
        raise SettingsError(
            f"These settings were written by a newer version (schema {version}).",
            hint="Update the app, or start it with another --data-dir.",
        )
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version = data["schema_version"]
    return data


@dataclass(frozen=True, slots=True)
class LoadNotice:
    """Something the user must be told about the settings file at start-up."""

    message: str


class SettingsStore:
    """Owns ``settings.toml``: the only writer of it, and the publisher of the current settings."""

    def __init__(
        self, path: Path, settings: Settings, notices: tuple[LoadNotice, ...] = ()
    ) -> None:
        self.path = path
        self.current: Observable[Settings] = Observable(settings)
        self.notices = notices

    @classmethod
    def load(cls, path: Path) -> SettingsStore:
        """Read the file (defaults when absent); a file that is not TOML is moved aside, not lost.

        Unknown keys and wrong types raise :class:`SettingsError` naming the key and leave the
        file untouched, so the user can fix it.
        """
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(path, Settings())
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            aside = _move_aside(path)
            _log.warning("settings file was unreadable (%s); moved to %s", exc, aside.name)
            notice = LoadNotice(
                f"Your settings file could not be read and was moved to {aside}. "
                "Default settings are in use; your wallets and earnings are not affected."
            )
            return cls(path, Settings(), (notice,))
        migrated = migrate(data)
        settings = settings_from_dict(migrated)
        store = cls(path, settings)
        if migrated is not data:
            store.save()
            _log.info("settings migrated to schema %d", SCHEMA_VERSION)
        return store

    def save(self, settings: Settings | None = None) -> None:
        text = tomli_w.dumps(settings_to_dict(settings or self.current.value))
        write_private_atomic(self.path, text.encode("utf-8"))

    def update(self, change: Callable[[Settings], Settings]) -> Settings:
        """Apply ``change``, validate, save, then publish; an invalid result changes nothing."""
        updated = validate(change(self.current.value))
        self.save(updated)
        self.current.set(updated)
        return updated


def _move_aside(path: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
        counter += 1
    path.rename(aside)
    return aside
