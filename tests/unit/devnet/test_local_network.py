"""``LocalNetwork``: proxy, client API and demand start together on loopback and stop cleanly."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from app.devnet.local_network import LocalNetwork, LocalNetworkStatus


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
