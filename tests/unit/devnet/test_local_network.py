"""``LocalNetwork``: proxy, client API and demand start together on loopback and stop cleanly."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import pytest

from app.devnet.devnet_root import devnet_root_config
from app.devnet.local_network import LocalNetwork, LocalNetworkStatus
from app.devnet.proxy_state import STATE_FILE
from app.devnet.test_proxy import PROXY_CONTRACT_FLOAT
from app.wallet.simulated_chain import SimulatedChain


async def test_starts_and_stops_on_loopback() -> None:
    network = LocalNetwork(demand_per_minute=0)
    await network.start()
    try:
        status = network.status.value
        assert status.running
        assert status.proxy_address.startswith("127.0.0.1:")
        assert status.workers == 0
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{status.client_url}/v1/models") as response,
        ):
            assert response.status == 200
            assert (await response.json())["data"] == []
    finally:
        await network.aclose()
    assert network.status.value == LocalNetworkStatus()
    await network.aclose()  # idempotent


async def test_a_taken_client_port_fails_the_start_and_stops_the_proxy() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        network = LocalNetwork(demand_per_minute=0, client_port=taken.getsockname()[1])
        with pytest.raises(OSError, match=r"(?i)address already in use"):
            await network.start()
    with pytest.raises(RuntimeError, match="not started"):
        _ = network.proxy.port
    assert network.status.value == LocalNetworkStatus()
    await network.aclose()


async def test_the_proxy_keeps_its_state_folder_and_deploys_on_the_chain(tmp_path: Path) -> None:
    chain = SimulatedChain(None)
    await chain.start()
    network = LocalNetwork(demand_per_minute=0, state_dir=tmp_path, chain=chain)
    await network.start()
    try:
        account = await chain.get_account_state(network.proxy.sc_raw_address)
        assert (account.status, account.balance) == ("active", PROXY_CONTRACT_FLOAT)
        assert network.proxy.root == devnet_root_config()
        assert (tmp_path / STATE_FILE).exists()
        key = network.proxy.public_key
    finally:
        await network.aclose()
    again = LocalNetwork(demand_per_minute=0, state_dir=tmp_path, chain=chain)
    await again.start()
    assert again.proxy.public_key == key
    await again.aclose()
    await chain.aclose()
