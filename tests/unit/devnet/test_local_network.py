"""``LocalNetwork``: proxy, client API and demand start together on loopback and stop cleanly."""

from __future__ import annotations

import aiohttp

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
