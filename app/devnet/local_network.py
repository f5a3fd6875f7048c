"""``LocalNetwork``: the built-in test network on loopback — test-mode proxy, client API, demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from app.core.observable import Observable
from app.core.service import ServiceGroup
from app.devnet.client_api import ClientApi
from app.devnet.demand import DemandGenerator, DemandStatus
from app.devnet.test_proxy import TestProxy
from app.network.root_config import RootConfig
from app.wallet.simulated_chain import SimulatedChain


@dataclass(frozen=True, slots=True)
class LocalNetworkStatus:
    """Where the local network listens and what its simulated clients are doing."""

    running: bool = False
    proxy_address: str = ""
    client_url: str = ""
    workers: int = 0
    demand: DemandStatus = field(default_factory=DemandStatus)


class LocalNetwork:
    """A service: starts the proxy, then the client API, then the demand; stops in reverse.

    Workers (the user's own, or any other COCOON worker in test mode) connect to
    :attr:`proxy_address`; apps can send OpenAI-style requests to :attr:`client_url`.
    ``state_dir`` keeps the proxy's key and tallies across runs (None: in memory); ``chain`` (not
    owned here) gets the proxy contract and the simulated clients' payments; ``root`` defaults to
    the devnet's own configuration (``resources/devnet/root-config.json``).
    """

    def __init__(
        self,
        *,
        demand_per_minute: int,
        proxy_port: int = 0,
        client_port: int = 0,
        host: str = "127.0.0.1",
        state_dir: Path | None = None,
        chain: SimulatedChain | None = None,
        root: RootConfig | None = None,
        db_commit_every: float = 1.5,
        chain_commit_every: float = 45.0,
    ) -> None:
        self.proxy = TestProxy(
            host=host,
            port=proxy_port,
            state_dir=state_dir,
            chain=chain,
            root=root,
            db_commit_every=db_commit_every,
            chain_commit_every=chain_commit_every,
        )
        self.client_api = ClientApi(self.proxy, host=host, port=client_port)
        self.demand = DemandGenerator(
            lambda: self.client_api.url, self.proxy.models, rate_per_minute=demand_per_minute
        )
        self._group = ServiceGroup(
            [("test proxy", self.proxy), ("client API", self.client_api), ("demand", self.demand)]
        )
        self.status: Observable[LocalNetworkStatus] = Observable(LocalNetworkStatus())
        self._unsubscribe = self.demand.status.subscribe(lambda _: self.refresh())
        self._started = False

    @property
    def proxy_address(self) -> str:
        return f"127.0.0.1:{self.proxy.port}"

    async def start(self) -> None:
        await self._group.start()
        self._started = True
        self.refresh()

    async def aclose(self) -> None:
        if not self._started:
            return
        self._started = False
        await self._group.aclose()
        self.status.set(LocalNetworkStatus())

    def refresh(self) -> None:
        """Re-read the counters (called on demand changes and by the app's status tick)."""
        if not self._started:
            return
        self.status.set(
            LocalNetworkStatus(
                running=True,
                proxy_address=self.proxy_address,
                client_url=self.client_api.url,
                workers=len(self.proxy.links),
                demand=self.demand.status.value,
            )
        )
