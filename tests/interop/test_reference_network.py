"""Interop with the upstream reference COCOON binaries: a local test-mode network as the
reference's ``--local-all`` mode lays it out (proxy-runner, router, client-runner), and this app's
worker joining it over the **direct router leg** (proof of work + RA-TLS to the router's ``-R``
port) and through the router's SOCKS5 port.

Optional: set ``COCOON_REF_BIN`` to the folder with ``router``, ``proxy-runner`` and
``client-runner`` (built from TelegramMessenger/cocoon; runtime packages libsodium23 liblz4-1
libssl3 libatomic1). Without it the tests are skipped, so the normal run needs nothing outside the
repository. The configs are the captured reference run's (``tests/fixtures/cocoon-traces/configs``,
throwaway keys); they fix the ports (proxy 11101/11102 behind router 11001/11002, SOCKS5 8116,
client API 10000).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from app.core.paths import resources_dir
from app.devnet.mock_backend import MockBackend, MockBackendConfig
from app.engine.endpoint import BackendEndpoint
from app.network.request_server import RequestServer
from app.network.worker import CocoonWorker
from app.network.worker_config import WorkerConfig
from tests.polling import eventually
from tests.unit.network.traces import TRACES_DIR

REF_BIN = os.environ.get("COCOON_REF_BIN", "")
pytestmark = pytest.mark.skipif(
    not REF_BIN, reason="set COCOON_REF_BIN to the reference binaries' folder to run interop tests"
)
MODEL = "Qwen/Qwen3-8B"
OWNER = "UQAuz15H1ZHrZ_psVrAra7HealMIVeFq0wguqlmFno1f3B-m"  # the captured run's worker owner


def _start(folder: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    with (folder / f"{name}.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [str(Path(REF_BIN) / name), *args], cwd=folder, stdout=log, stderr=log
        )


@pytest.fixture
def reference_network(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """proxy-runner + router (+ client-runner) in ``tmp_path``; the router's worker port policy
    comes from the test's ``policy`` parameter (default any)."""
    policy = getattr(request, "param", "any")
    for item in (TRACES_DIR / "configs").iterdir():
        shutil.copy(item, tmp_path / item.name)
    shutil.copy(
        resources_dir() / "ton" / "testnet-global.config.json", tmp_path / "global.config.json"
    )
    fake_ton = ("--disable-ton", "fake-ton-config.json")
    procs = [
        _start(tmp_path, "proxy-runner", "--config", "proxy-config.json", "-v3", *fake_ton),
        _start(
            tmp_path,
            "router",
            "-S",
            "8116@any",
            "-R",
            f"11001:127.0.0.1:11101@{policy}",
            "-R",
            "11002:127.0.0.1:11102@any",
            "--serialize-info",
        ),
    ]
    procs.append(
        _start(tmp_path, "client-runner", "--config", "client-config.json", "-v3", *fake_ton)
    )
    try:
        yield tmp_path
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
async def backend() -> AsyncIterator[MockBackend]:
    mock = MockBackend(MockBackendConfig(mode="json", model=MODEL))
    await mock.start()
    yield mock
    await mock.aclose()


async def _serve_one(worker: CocoonWorker) -> None:
    await eventually(lambda: worker.status.value.connected_proxies == 1, limit_s=60)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}
    async with aiohttp.ClientSession() as session:
        for _ in range(30):  # the client-runner needs a moment to learn about the worker
            async with session.post("http://127.0.0.1:10000/v1/chat/completions", json=body) as r:
                if r.status == 200:
                    answer = json.loads(await r.text())
                    assert answer["usage"]["total_tokens"] > 0
                    break
            await asyncio.sleep(1)
        else:
            raise AssertionError("the reference client never got an answer")
    await eventually(lambda: worker.status.value.served >= 1, limit_s=30)


async def _worker(
    backend: MockBackend, *, router_leg: str = "", router_socks5: str = ""
) -> tuple[CocoonWorker, RequestServer]:
    server = RequestServer(BackendEndpoint.from_url(backend.url), model=MODEL)
    await server.start()
    config = WorkerConfig.from_strings(
        proxies=["127.0.0.1:11001"],
        model=MODEL,
        owner_address=OWNER,
        router_leg=router_leg,
        router_socks5=router_socks5,
    )
    worker = CocoonWorker(config, server=server)
    await worker.start()
    return worker, server


@pytest.mark.slow
@pytest.mark.allow_log_warnings  # the worker retries while the reference network starts up
@pytest.mark.parametrize("reference_network", ["any", "fake_tdx"], indirect=True)
async def test_the_direct_router_leg_joins_the_reference_network(
    reference_network: Path, backend: MockBackend, request: pytest.FixtureRequest
) -> None:
    policy = request.node.callspec.params["reference_network"]
    worker, server = await _worker(backend, router_leg=policy)
    try:
        await _serve_one(worker)
        [session] = worker.status.value.proxies
        assert session.peer_attestation.startswith("any: no attestation")
        assert worker.status.value.tokens > 0  # billed by the reference proxy's final-info rules
    finally:
        await worker.aclose()
        await server.aclose()


@pytest.mark.slow
@pytest.mark.allow_log_warnings  # the worker retries while the reference network starts up
async def test_socks5_through_the_reference_router(
    reference_network: Path, backend: MockBackend
) -> None:
    worker, server = await _worker(backend, router_socks5="127.0.0.1:8116")
    try:
        await _serve_one(worker)
        [session] = worker.status.value.proxies
        assert session.peer_image_hash  # the router's AttestedPeerInfo record arrived
    finally:
        await worker.aclose()
        await server.aclose()
