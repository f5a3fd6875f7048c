"""Start earning end to end on the local network: client API → test proxy → worker → backend.

The backend is the mock OpenAI server (fast, deterministic usage) through ``--backend-url``; the
real llama.cpp engine path is covered by ``test_engine_earning.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from pytoniq_core.boc.builder import Builder
from pytoniq_core.tlb.account import StateInit

from app.core.errors import UserFacingError
from app.core.settings import NetworkName
from app.devnet.local_network import LocalNetwork
from app.devnet.mock_backend import MockBackend, MockBackendConfig
from app.network.admission import NotAdmittedError
from app.network.root_config import parse_fake_ton_config
from app.wallet.simulated_chain import SimulatedChain
from tests.polling import eventually
from tests.service_builder import TEST_OWNER, build_test_services
from tests.unit.network.test_root_config import params_cell, root_cell
from tests.unit.network.traces import traces_dir

MODEL = "Qwen/Qwen3-8B"


@pytest.fixture
async def backend() -> AsyncIterator[MockBackend]:
    mock = MockBackend(MockBackendConfig(model=MODEL))
    await mock.start()
    yield mock
    await mock.aclose()


async def test_start_earning_serves_and_bills(tmp_path: Path, backend: MockBackend) -> None:
    services = build_test_services(
        tmp_path, backend_url=backend.url, model=MODEL, owner_address=TEST_OWNER
    )
    await services.start()
    try:
        await services.earning.start_earning()
        local = services.local_network
        assert local is not None
        await eventually(lambda: local.proxy.models() == [MODEL])
        url = f"{local.client_api.url}/v1/chat/completions"
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
        async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
            assert response.status == 200
            text = await response.text()
        assert '"usage"' in text
        serving = services.earning.status.value.serving
        assert serving is not None
        await eventually(lambda: services.earning.status.value.serving.served == 1)  # type: ignore[union-attr]
        status = services.earning.status.value
        assert status.phase == "earning"
        assert status.serving is not None
        assert status.serving.tokens.total_tokens_used > 0
        assert "served 1" in services.status_line()
        await services.jobs.flush()
        jobs = await services.jobs.recent(5)
        assert len(jobs) == 1
        assert jobs[0].model == MODEL
        assert "hi" not in repr(jobs[0])
    finally:
        await services.aclose()
    assert services.earning.status.value.phase == "stopped"


@pytest.mark.allow_log_warnings
async def test_backend_url_without_model_is_a_clear_failure(
    tmp_path: Path, backend: MockBackend
) -> None:
    services = build_test_services(tmp_path, backend_url=backend.url, owner_address=TEST_OWNER)
    await services.start()
    try:
        with pytest.raises(UserFacingError, match="model name"):
            await services.earning.start_earning()
        status = services.earning.status.value
        assert status.phase == "failed"
        assert "model name" in status.message
        assert not services.earning.earning
    finally:
        await services.aclose()


@pytest.mark.allow_log_warnings
@pytest.mark.parametrize(
    ("network", "message"),
    [("custom", "No proxy to connect to"), ("testnet", "no known COCOON root contract")],
)
async def test_networks_without_a_target_explain_why(
    tmp_path: Path, backend: MockBackend, network: NetworkName, message: str
) -> None:
    services = build_test_services(tmp_path, network, backend_url=backend.url, model=MODEL)
    with pytest.raises(UserFacingError, match=message):
        await services.earning.start_earning()
    assert services.earning.status.value.phase == "failed"


async def test_stop_and_start_again(tmp_path: Path, backend: MockBackend) -> None:
    services = build_test_services(
        tmp_path, backend_url=backend.url, model=MODEL, owner_address=TEST_OWNER
    )
    await services.start()
    try:
        await services.earning.start_earning()
        await services.earning.start_earning()  # a second press does nothing
        await services.earning.stop_earning()
        assert services.earning.status.value.phase == "stopped"
        await services.earning.start_earning()
        assert services.earning.earning
    finally:
        await services.aclose()


FAKE_TON = traces_dir() / "configs" / "fake-ton-config.json"


@pytest.mark.allow_log_warnings  # the custom network's wallet is offline here (no liteservers)
async def test_custom_network_from_a_fake_ton_root_config(
    tmp_path: Path, backend: MockBackend
) -> None:
    config = json.loads(FAKE_TON.read_text())
    config["worker_fee_per_token"] = 7
    # The proxy runs on the same root config (its params are in the worker-contract address).
    local = LocalNetwork(demand_per_minute=0, root=parse_fake_ton_config(config))
    await local.start()
    config["registered_proxies"][0]["address"] = f"{local.proxy_address} 127.0.0.1:9"
    root_file = tmp_path / "fake-ton.json"
    root_file.write_text(json.dumps(config))
    services = build_test_services(
        tmp_path / "data",
        "custom",
        backend_url=backend.url,
        model=MODEL,
        root_config_file=str(root_file),
        owner_address=TEST_OWNER,
    )
    await services.start()
    try:
        await services.earning.start_earning()
        await eventually(lambda: local.proxy.models() == [MODEL])
        serving = services.earning.status.value
        assert serving.phase == "earning"
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{local.client_api.url}/v1/chat/completions", json=body) as response,
        ):
            assert response.status == 200
        await eventually(lambda: services.earning.status.value.serving.served == 1)  # type: ignore[union-attr]
        status = services.earning.status.value.serving
        assert status is not None
        # Earnings at the root config's worker fee (7 nanotons per adjusted token), not the default.
        assert status.earned_nanotons == 7 * status.tokens.total_tokens_used
    finally:
        await services.aclose()
        await local.aclose()


@pytest.mark.allow_log_warnings
async def test_unreadable_root_config_is_a_clear_failure(tmp_path: Path) -> None:
    services = build_test_services(
        tmp_path,
        "custom",
        backend_url="http://127.0.0.1:9",
        model=MODEL,
        root_config_file=str(tmp_path / "missing.json"),
        owner_address=TEST_OWNER,
    )
    with pytest.raises(UserFacingError, match=r"missing\.json"):
        await services.earning.start_earning()
    assert services.earning.status.value.phase == "failed"


@pytest.mark.allow_log_warnings
async def test_mainnet_reads_the_root_contract_and_says_plainly_why_this_pc_cannot_serve(
    tmp_path: Path, backend: MockBackend
) -> None:
    # The TON network is the boundary: a simulated chain holds a production root contract (built
    # from the documented layout: test mode off) where a liteserver would answer.
    chain = SimulatedChain(None)
    await chain.start()
    root_data = root_cell(params_cell(is_test=False))
    root = await chain.deploy_contract(
        StateInit(code=Builder().store_uint(1, 8).end_cell(), data=root_data), balance=10**9
    )
    services = build_test_services(
        tmp_path,
        "mainnet",
        backend_url=backend.url,
        model=MODEL,
        owner_address="UQDLYGhRHNqXquKXJazsjMBUUhXtmZ_Nom43-_sztpg80bUO",
        root_contract_address=root,
        chain=chain,
    )
    with pytest.raises(NotAdmittedError) as refused:
        await services.earning.start_earning()
    text = refused.value.describe()
    assert "take work only from attested confidential (Intel TDX) workers" in text
    assert "not a TDX confidential VM" in text
    assert "--network devnet" in text
    status = services.earning.status.value
    assert (status.phase, status.worker) == ("failed", None)  # nothing was dialled
    await chain.aclose()
