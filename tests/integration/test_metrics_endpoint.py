"""The metrics endpoint over real loopback HTTP: built by the composition root when
``general.metrics_port`` is set, ``/metrics`` and ``/status.json``, the bearer token a
non-loopback address needs, counters that survive a Stop/Start between scrapes, and ``run
--metrics-port``."""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import keyring
import pytest

from app import APP_NAME
from app.bootstrap import Services
from app.cli.main import build_parser
from app.cli.run_cmd import settings_override
from app.core.billing import TokensUsed
from app.core.errors import UserFacingError
from app.core.observable import Observable
from app.core.paths import AppPaths
from app.core.settings import Settings
from app.core.settings_store import SettingsStore
from app.engine.telemetry import TelemetrySnapshot
from app.network.earning import EarningStatus
from app.network.metrics import MetricsServer
from app.network.metrics_auth import KEYRING_USER, METRICS_TOKEN_ENV
from app.network.metrics_snapshot import MetricsSnapshot, snapshot_of
from app.network.request_server import ServingStatus
from tests.polling import eventually
from tests.service_builder import build_test_services

EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 - what the token is for


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _services(tmp_path: Path, *, port: int, bind: str = "127.0.0.1") -> Services:
    """Test services with the metrics settings saved first (the builder reads them once)."""
    store = SettingsStore.load(AppPaths(tmp_path).ensure().settings_file)

    def metrics(settings: Settings) -> Settings:
        general = dataclasses.replace(settings.general, metrics_port=port, metrics_bind=bind)
        return dataclasses.replace(settings, general=general)

    store.update(metrics)
    return build_test_services(tmp_path)


@pytest.fixture(autouse=True)
def no_token_around(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No token from this machine's environment; the suite's in-memory keyring left clean."""
    monkeypatch.delenv(METRICS_TOKEN_ENV, raising=False)
    yield
    if keyring.get_password(APP_NAME, KEYRING_USER) is not None:
        keyring.delete_password(APP_NAME, KEYRING_USER)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def _get(http: aiohttp.ClientSession, url: str, token: str = "") -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(url, headers=headers) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def test_metrics_are_off_by_default(tmp_path: Path) -> None:
    assert "metrics" not in build_test_services(tmp_path).group.names


@pytest.mark.slow
async def test_metrics_and_status_over_loopback(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    port = _free_port()
    services = _services(tmp_path, port=port)
    assert services.group.names[0] == "metrics"
    await services.start()
    try:
        base = f"http://127.0.0.1:{port}"
        # The fake GPU's first telemetry round may still be under way.
        await eventually(
            lambda: any(g.sample is not None for g in services.telemetry.snapshot.value.gpus)
        )
        status, kind, text = await _get(http, f"{base}/metrics")
        assert status == 200
        assert kind.startswith("text/plain")
        assert "version=0.0.4" in kind
        assert "# TYPE cocoon_provider_requests_served_total counter\n" in text
        assert "\ncocoon_provider_up 1\n" in text
        assert "\ncocoon_provider_requests_served_total 0\n" in text
        assert '\ncocoon_provider_tokens_total{kind="completion"} 0\n' in text
        assert "\ncocoon_provider_proxy_connections 0\n" in text
        assert "\ncocoon_provider_event_loop_lag_seconds " in text
        assert '\ncocoon_provider_gpu_temperature_celsius{gpu="0"} ' in text
        assert '\ncocoon_provider_gpu_utilization_ratio{gpu="0"} ' in text

        status, kind, body = await _get(http, f"{base}/status.json")
        assert status == 200
        assert kind.startswith("application/json")
        data = json.loads(body)
        assert data["network"] == "devnet"
        assert data["phase"] == "running"
        assert data["earning"] == "stopped"
        assert data["summary"].startswith("[devnet] running")
        assert [s["key"] for s in data["pipeline"]] == [s.key for s in services.pipeline().stages]
        assert {"key", "title", "state", "reason", "fix"} == set(data["pipeline"][0])
        status, _, _ = await _get(http, f"{base}/nothing-here")
        assert status == 404
    finally:
        await services.aclose()
    with pytest.raises(aiohttp.ClientConnectionError):
        await _get(http, f"http://127.0.0.1:{port}/metrics")


async def test_a_non_loopback_address_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    services = _services(tmp_path, port=_free_port(), bind=EVERY_INTERFACE)
    try:
        with pytest.raises(UserFacingError, match="no metrics token is set") as caught:
            await services.start()
    finally:
        await services.aclose()
    assert METRICS_TOKEN_ENV in caught.value.hint
    assert "127.0.0.1" in caught.value.hint


@pytest.mark.slow
@pytest.mark.parametrize("where", ["environment", "keyring"])
async def test_with_a_token_requests_without_it_get_401(
    where: str, tmp_path: Path, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    if where == "environment":
        monkeypatch.setenv(METRICS_TOKEN_ENV, "fleet-s3cret")
    else:
        keyring.set_password(APP_NAME, KEYRING_USER, "fleet-s3cret")
    port = _free_port()
    services = _services(tmp_path, port=port, bind=EVERY_INTERFACE)
    await services.start()
    try:
        for path in ("/metrics", "/status.json"):
            url = f"http://127.0.0.1:{port}{path}"
            assert (await _get(http, url))[0] == 401
            assert (await _get(http, url, token="wrong"))[0] == 401
            status, _, body = await _get(http, url, token="fleet-s3cret")
            assert status == 200, path
            assert "fleet-s3cret" not in body
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    finally:
        await services.aclose()


async def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        server = MetricsServer(MetricsSnapshot, port=port)
        with pytest.raises(UserFacingError, match=f"Could not serve metrics on 127.0.0.1:{port}"):
            await server.start()
        await server.aclose()


async def test_counters_survive_a_stop_and_start_between_scrapes(
    http: aiohttp.ClientSession,
) -> None:
    earning: Observable[EarningStatus] = Observable(EarningStatus())
    telemetry = TelemetrySnapshot(state="no_gpu", message="")
    server = MetricsServer(lambda: snapshot_of(earning.value, telemetry), port=0, watch=(earning,))
    await server.start()
    try:

        def session(served: int, completion: int) -> EarningStatus:
            tokens = TokensUsed(completion_tokens_used=completion, total_tokens_used=completion)
            return EarningStatus(
                phase="earning", serving=ServingStatus(served=served, tokens=tokens)
            )

        earning.set(session(4, 40))
        # Stop earning, Start earning, two requests served — all before the next scrape.
        earning.set(EarningStatus(phase="stopped"))
        earning.set(session(0, 0))
        earning.set(session(2, 25))
        status, _, text = await _get(http, f"{server.url}/metrics")
        assert status == 200
        assert "\ncocoon_provider_requests_served_total 6\n" in text
        assert '\ncocoon_provider_tokens_total{kind="completion"} 65\n' in text
    finally:
        await server.aclose()
    await server.aclose()  # idempotent


def test_run_metrics_port_overrides_the_setting() -> None:
    args = build_parser().parse_args(["run", "--headless", "--metrics-port", "9464"])
    assert settings_override(args)(Settings()).general.metrics_port == 9464
    unset = build_parser().parse_args(["run", "--headless"])
    saved = dataclasses.replace(Settings().general, metrics_port=9100)
    assert settings_override(unset)(Settings(general=saved)).general.metrics_port == 9100


@pytest.mark.parametrize("bad", ["70000", "-1", "http"])
def test_run_metrics_port_must_be_a_port(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--metrics-port", bad])
    assert "not a TCP port" in capsys.readouterr().err
