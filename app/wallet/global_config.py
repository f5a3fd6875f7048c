"""Which TON global config (liteservers + trust anchor) the live backend uses, and keeping a fresh
copy: the user's own file if set, else a copy fetched from ton.org within the last week, else the
one shipped in ``resources/ton/`` (see its README for where those come from).

Liteserver lists go stale, so a fresher copy is fetched in the background and cached in the data
folder with the time it was fetched. ``COCOON_PROVIDER_OFFLINE=1`` turns every network access of
the live backend off (the test suite sets it: it must never dial public servers).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp

from app.core.atomic import write_private_atomic
from app.core.paths import AppPaths, resources_dir
from app.wallet.lite_backend import (
    NetworkConfigError,
    check_global_config,
    load_global_config,
    offline,
)

_log = logging.getLogger(__name__)

OFFICIAL_URLS: Final = {
    "mainnet": "https://ton.org/global.config.json",
    "testnet": "https://ton.org/testnet-global.config.json",
}
#: A fetched copy older than this is not preferred over the shipped one any more.
MAX_CACHE_AGE_S: Final = 7 * 86_400
REFRESH_EVERY_S: Final = 86_400
_FETCH_TIMEOUT_S: Final = 15.0
_MAX_BYTES: Final = 1024 * 1024


class ConfigOrigin(enum.StrEnum):
    USER = "your file"
    FETCHED = "fetched from ton.org"
    SHIPPED = "shipped with the app"


@dataclass(frozen=True, slots=True)
class ChosenConfig:
    config: dict[str, Any]
    origin: ConfigOrigin
    path: Path
    fetched_at: float | None = None

    def describe(self) -> str:
        when = (
            time.strftime(" on %Y-%m-%d %H:%M UTC", time.gmtime(self.fetched_at))
            if self.fetched_at
            else ""
        )
        return f"{self.origin.value}{when} ({self.path})"


def cached_path(paths: AppPaths, network: str) -> Path:
    return paths.cache_dir / "ton" / f"{network}-global.config.json"


def choose_config(network: str, paths: AppPaths, user_file: str = "") -> ChosenConfig:
    """The config to connect with (raises :class:`NetworkConfigError` for a bad user file)."""
    if user_file.strip():
        path = Path(user_file).expanduser()
        return ChosenConfig(load_global_config(network, path), ConfigOrigin.USER, path)
    cache = cached_path(paths, network)
    with contextlib.suppress(OSError, ValueError, NetworkConfigError):
        fetched_at = cache.stat().st_mtime
        if time.time() - fetched_at < MAX_CACHE_AGE_S:
            config = load_global_config(network, cache)
            return ChosenConfig(config, ConfigOrigin.FETCHED, cache, fetched_at)
    shipped = resources_dir() / "ton" / f"{network}-global.config.json"
    return ChosenConfig(load_global_config(network, shipped), ConfigOrigin.SHIPPED, shipped)


async def refresh(network: str, paths: AppPaths, *, url: str | None = None) -> bool:
    """Fetch the official config and cache it if it is a valid one; False when not possible."""
    if offline() or network not in OFFICIAL_URLS:
        return False
    target = url or OFFICIAL_URLS[network]
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_FETCH_TIMEOUT_S)) as session,
            session.get(target) as response,
        ):
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            body = await response.content.read(_MAX_BYTES + 1)
        if len(body) > _MAX_BYTES:
            raise ValueError("larger than 1 MiB")
        config = json.loads(body)
        check_global_config(config, target)
    except (aiohttp.ClientError, TimeoutError, ValueError, NetworkConfigError) as exc:
        _log.info("could not refresh the %s config from %s: %s", network, target, exc)
        return False
    path = cached_path(paths, network)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    await asyncio.to_thread(write_private_atomic, path, json.dumps(config).encode())
    _log.info("refreshed the %s liteserver list from %s", network, target)
    return True


class ConfigRefresher:
    """A service: refreshes the cached config at start and then daily (live networks only)."""

    def __init__(self, network: str, paths: AppPaths, *, url: str | None = None) -> None:
        self._network, self._paths, self._url = network, paths, url
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self._network} config refresh")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await refresh(self._network, self._paths, url=self._url)
            await asyncio.sleep(REFRESH_EVERY_S)
