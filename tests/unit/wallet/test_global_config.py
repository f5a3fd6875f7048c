"""Which TON global config the live backend uses, and refreshing it from an HTTP server."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from app.core.paths import AppPaths, resources_dir
from app.wallet.global_config import (
    MAX_CACHE_AGE_S,
    ConfigOrigin,
    cached_path,
    choose_config,
    refresh,
)
from app.wallet.lite_backend import NetworkConfigError

SHIPPED = json.loads((resources_dir() / "ton" / "testnet-global.config.json").read_text())


def test_both_networks_are_shipped_with_liteservers() -> None:
    for network, count in (("mainnet", 18), ("testnet", 13)):
        chosen = choose_config(network, AppPaths(Path("/nonexistent")))
        assert chosen.origin is ConfigOrigin.SHIPPED
        assert len(chosen.config["liteservers"]) == count


def test_a_fresh_fetched_copy_wins_and_a_stale_one_does_not(tmp_path: Path) -> None:
    paths = AppPaths(tmp_path)
    cache = cached_path(paths, "testnet")
    cache.parent.mkdir(parents=True)
    fresher = {**SHIPPED, "liteservers": SHIPPED["liteservers"][:2]}
    cache.write_text(json.dumps(fresher))
    chosen = choose_config("testnet", paths)
    assert chosen.origin is ConfigOrigin.FETCHED
    assert len(chosen.config["liteservers"]) == 2
    assert "fetched from ton.org on" in chosen.describe()
    old = time.time() - MAX_CACHE_AGE_S - 60
    os.utime(cache, (old, old))
    assert choose_config("testnet", paths).origin is ConfigOrigin.SHIPPED


def test_the_users_own_file_wins_and_a_bad_one_is_a_clear_error(tmp_path: Path) -> None:
    own = tmp_path / "mine.json"
    own.write_text(json.dumps(SHIPPED))
    assert choose_config("testnet", AppPaths(tmp_path), str(own)).origin is ConfigOrigin.USER
    own.write_text('{"liteservers": []}')
    with pytest.raises(NetworkConfigError, match="lists no liteservers"):
        choose_config("testnet", AppPaths(tmp_path), str(own))
    with pytest.raises(NetworkConfigError, match="missing"):
        choose_config("testnet", AppPaths(tmp_path), str(tmp_path / "absent.json"))


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, object]]]:
    answer: dict[str, object] = {"status": 200, "body": json.dumps(SHIPPED)}

    async def handle(_: web.Request) -> web.Response:
        return web.Response(status=int(answer["status"]), text=str(answer["body"]))  # type: ignore[call-overload]

    app = web.Application()
    app.router.add_get("/testnet-global.config.json", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/testnet-global.config.json", answer
    await runner.cleanup()


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, "oops"), (200, "not json"), (200, json.dumps({"liteservers": []}))],
)
async def test_a_bad_answer_leaves_the_cache_alone(
    tmp_path: Path,
    server: tuple[str, dict[str, object]],
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    body: str,
) -> None:
    monkeypatch.setenv("COCOON_PROVIDER_OFFLINE", "0")
    url, answer = server
    paths = AppPaths(tmp_path)
    answer.update(status=status, body=body)
    assert await refresh("testnet", paths, url=url) is False
    assert not cached_path(paths, "testnet").exists()
    answer.update(status=200, body=json.dumps(SHIPPED))
    assert await refresh("testnet", paths, url=url) is True
    assert choose_config("testnet", paths).origin is ConfigOrigin.FETCHED
    assert cached_path(paths, "testnet").stat().st_mode & 0o777 == 0o600


async def test_offline_mode_fetches_nothing(
    tmp_path: Path, server: tuple[str, dict[str, object]]
) -> None:
    url, _ = server
    assert os.environ["COCOON_PROVIDER_OFFLINE"] == "1"  # the suite's own setting
    assert await refresh("testnet", AppPaths(tmp_path), url=url) is False
