"""A test-mode COCOON proxy on loopback: accepts workers, routes requests, pays as proxies do.

Speaks the same framing and TL as the reference proxy (``is_test``, fake TON). Payments follow
``ProxyRunner`` (docs/protocol.md §6): billed tokens go to the database every ``db_commit_every``
seconds and are anchored every ``chain_commit_every`` seconds; vouchers are real Ed25519 signatures
over real cells, always for the anchored amount, made out to the real worker-contract address of
the root configuration's code. With a :class:`SimulatedChain`, the proxy contract is deployed there
and the simulated clients' payments land in it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from nacl.signing import SigningKey
from pytoniq_core.boc.address import Address

from app.core.money import NANOTONS_PER_TON
from app.devnet.devnet_root import devnet_root_config
from app.devnet.proxy_state import ProxyLedger, ProxyState, WorkerTally
from app.devnet.worker_link import RunningQuery, WorkerLink
from app.network.connection import LISTENER_KEEPALIVE, Connection, Keepalive
from app.network.root_config import RootConfig
from app.network.tl import TLObject
from app.network.vouchers import sign_voucher
from app.wallet.chain import ChainError, raw_address
from app.wallet.cocoon_contracts import (
    proxy_contract_address,
    proxy_contract_state_init,
    worker_contract_address,
)
from app.wallet.simulated_chain import SimulatedChain

_log = logging.getLogger(__name__)

# The devnet's owner addresses: the proxy and client owners of the reference traces
# (tests/fixtures/cocoon-traces). The proxy's key lives in its state folder, or is made per run.
DEVNET_PROXY_OWNER = "UQAuz15H1ZHrZ_psVrAra7HealMIVeFq0wguqlmFno1f3B-m"
DEVNET_CLIENT_OWNER = "UQCdj43bBDyeJlfe6FVSpWLfsDMp4YHbmz5lca5-tNz-fx20"
#: What the proxy contract is funded with when first deployed on a simulated chain.
PROXY_CONTRACT_FLOAT: Final = 10 * NANOTONS_PER_TON


class NoWorkerAvailableError(Exception):
    """No ready, enabled worker with spare capacity serves the requested model."""


def _friendly(raw: str) -> str:
    """The form the reference sends contract addresses in (non-bounceable, as in its traces)."""
    return str(Address(raw).to_str(is_bounceable=False))  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class _Identity:
    key: SigningKey
    public_key: bytes
    sc_raw: str


class TestProxy:
    """The proxy side for workers (``start``/``aclose``) and :meth:`run_query` for clients.

    ``port`` 0 picks a free one (read :attr:`port` after ``start``). ``state_dir`` None keeps
    key and tallies in memory (a new proxy each run). ``chain`` (not owned: started and closed
    by whoever made it) receives the proxy contract and the clients' payments.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        is_test: bool = True,
        owner_address: str = DEVNET_PROXY_OWNER,
        client_owner: str = DEVNET_CLIENT_OWNER,
        keepalive: Keepalive = LISTENER_KEEPALIVE,
        db_commit_every: float = 1.5,
        chain_commit_every: float = 45.0,
        state_dir: Path | None = None,
        chain: SimulatedChain | None = None,
        root: RootConfig | None = None,
    ) -> None:
        if db_commit_every <= 0 or chain_commit_every <= 0:
            raise ValueError("commit intervals must be positive")
        self.is_test = is_test
        self._host = host
        self._port = port
        self.owner_address = owner_address
        self._client_owner = client_owner
        self._keepalive = keepalive
        self._db_every = db_commit_every
        self._chain_every = chain_commit_every
        self._state = ProxyState(state_dir)
        self._ledger = ProxyLedger(self._state)
        self._chain = chain
        self.root = root if root is not None else devnet_root_config()
        self._identity: _Identity | None = None
        self._server: asyncio.Server | None = None
        self._links: set[WorkerLink] = set()
        self._worker_sc: dict[str, str] = {}
        self._vouchers: dict[str, tuple[int, bytes]] = {}
        self._unpaid_client_tokens = 0
        self._committer: asyncio.Task[None] | None = None
        self._closing = False

    # ----------------------------------------------------------------- identity
    def _id(self) -> _Identity:
        if self._identity is None:
            raise RuntimeError("the test proxy is not started")
        return self._identity

    @property
    def public_key(self) -> bytes:
        return self._id().public_key

    @property
    def sc_raw_address(self) -> str:
        """The proxy contract's address, raw (``0:hex``)."""
        return self._id().sc_raw

    @property
    def sc_address(self) -> str:
        return _friendly(self._id().sc_raw)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the test proxy is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def links(self) -> list[WorkerLink]:
        return [link for link in self._links if link.ready]

    # ----------------------------------------------------------------- service
    async def start(self) -> None:
        self._worker_sc.clear()
        self._vouchers.clear()
        self._unpaid_client_tokens = 0
        try:
            seed = await asyncio.to_thread(self._state.seed)
            await self._ledger.load()
            key = SigningKey(seed)
            public_key = bytes(key.verify_key)
            sc_raw = proxy_contract_address(
                owner=self.owner_address, proxy_public_key=public_key, root=self.root
            )
            self._identity = _Identity(key, public_key, raw_address(sc_raw))
            if self._chain is not None:
                await self._deploy(self._chain, public_key)
            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(self._new_connection, self._host, self._port)
        except BaseException:
            self._state.close()
            raise
        self._closing = False
        self._committer = asyncio.create_task(self._commit_periodically(), name="test-proxy-commit")
        _log.info("test proxy listening for workers on %s:%d", self._host, self.port)

    async def _deploy(self, chain: SimulatedChain, public_key: bytes) -> None:
        """Deploy the proxy contract with its float (a deployed one is left as it is)."""
        chain.register_cocoon_codes(self.root)
        state_init = proxy_contract_state_init(
            owner=self.owner_address, proxy_public_key=public_key, root=self.root
        )
        deployed = await chain.deploy_contract(state_init, balance=PROXY_CONTRACT_FLOAT)
        if raw_address(deployed) != self.sc_raw_address:  # pragma: no cover - same StateInit
            raise RuntimeError("the proxy contract was deployed at an unexpected address")

    async def aclose(self) -> None:
        server, self._server = self._server, None
        committer, self._committer = self._committer, None
        if committer is not None:
            # The flag too: Python 3.11's wait_for may swallow a cancel racing a write's result.
            self._closing = True
            committer.cancel()
            await asyncio.gather(committer, return_exceptions=True)
        if server is not None:
            server.close()
        links = list(self._links)
        for link in links:
            link.close("proxy stopped")
        for link in links:
            if link.conn is not None:
                await link.conn.wait_closed()
        if server is not None:
            await server.wait_closed()
        self._state.close()

    def _new_connection(self) -> Connection:
        link = WorkerLink(self)
        conn = Connection(
            dialer=False,
            on_packet=link.on_packet,
            on_query=link.on_query,
            keepalive=self._keepalive,
            name="worker",
        )
        link.conn = conn
        self._links.add(link)

        def ended(future: asyncio.Future[str]) -> None:
            self._links.discard(link)
            link.closed(future.result())
            _log.info("test proxy: worker %s disconnected: %s", link.owner or "?", future.result())

        conn.closed.add_done_callback(ended)
        return conn

    # ----------------------------------------------------------------- accounting
    def worker_sc_address(self, owner: str) -> str:
        """The worker-contract address this proxy pays ``owner`` through (any address form)."""
        key = raw_address(owner)
        address = self._worker_sc.get(key)
        if address is None:
            raw = worker_contract_address(
                owner=key,
                proxy_sc=self.sc_raw_address,
                proxy_public_key=self.public_key,
                root=self.root,
            )
            address = self._worker_sc[key] = _friendly(raw)
        return address

    def tally(self, owner: str) -> WorkerTally:
        """``owner``'s counters (any address form; workers of one owner share them)."""
        return self._ledger.tally(raw_address(owner))

    def voucher_for(self, owner: str) -> TLObject:
        """A signed voucher for what is anchored; re-signed only when that amount changes."""
        tally = self.tally(owner)
        tokens = tally.tokens_committed_to_blockchain
        cached = self._vouchers.get(tally.owner)
        if cached is None or cached[0] != tokens:
            boc = sign_voucher(
                self._id().key,
                tokens=tokens,
                query_id=int.from_bytes(os.urandom(8), "little"),
                worker_sc_address=self.worker_sc_address(owner),
                excesses_address=self.sc_address,
            )
            cached = self._vouchers[tally.owner] = (tokens, boc)
        return TLObject("proxy.signedPayment", {"data": cached[1]})

    def bill(self, link: WorkerLink, request_id: bytes, tokens: int) -> None:
        """Add a finished request's tokens and send ``proxy.workerRequestPayment``."""
        tally = self._ledger.bill(link.owner_raw, tokens)
        self._unpaid_client_tokens += tokens
        link.send(
            TLObject(
                "proxy.workerRequestPayment",
                {
                    "request_id": request_id,
                    "signed_payment": self.voucher_for(link.owner),
                    "db_tokens": tally.tokens_committed_to_db,
                    "max_tokens": tally.max_tokens,
                    "request_tokens": tokens,
                    "request_client_owner": self._client_owner,
                },
            )
        )

    async def _commit_periodically(self) -> None:
        # One task for both commits, as the reference anchors the state of a database commit.
        loop = asyncio.get_running_loop()
        anchor_at = loop.time() + self._chain_every
        while True:
            await asyncio.sleep(self._db_every)
            if self._closing:
                return
            try:
                await self.commit_to_db()
                if loop.time() >= anchor_at:
                    anchor_at = loop.time() + self._chain_every
                    await self.anchor()
            except Exception:  # a full disk must not stop the proxy; the next tick retries
                _log.exception("test proxy: could not commit its state")

    async def commit_to_db(self) -> None:
        """Flush the tallies to the database, then collect the clients' payments for them."""
        await self._ledger.commit_to_db()
        await self._collect_client_payments()

    async def anchor(self) -> None:
        """Anchor what the database holds; owners whose amount moved get a fresh voucher."""
        for tally in await self._ledger.anchor():
            links = [link for link in self.links if link.owner_raw == tally.owner]
            if links:
                voucher = self.voucher_for(tally.owner)
                for link in links:
                    link.send(voucher)

    async def _collect_client_payments(self) -> None:
        """Simulated clients pay ``price_per_token`` per billed token into the proxy contract.

        With an empty body, which the proxy contract accepts as a plain top-up: a text comment
        is an unknown action to it, and the failed computation would cost more than the payment.
        """
        tokens = self._unpaid_client_tokens
        amount = tokens * self.root.price_per_token
        if self._chain is None or amount <= 0:
            self._unpaid_client_tokens -= tokens
            return
        try:
            await self._chain.mint(
                self.sc_raw_address,
                amount,
                source=raw_address(self._client_owner),
            )
        except ChainError as exc:
            _log.warning("test proxy: the simulated clients' payment failed (%s); will retry", exc)
        else:
            self._unpaid_client_tokens -= tokens

    # ----------------------------------------------------------------- routing
    def models(self) -> list[str]:
        return sorted({link.base_model for link in self.links})

    def run_query(self, *, model: str, request: bytes, timeout: float) -> RunningQuery:
        """Route a boxed ``http.request`` to the least-loaded worker for ``model``.

        Like ``ProxyRunner::choose_connection``: enabled links serving the model with spare
        per-connection capacity, smallest ``running × average time``.
        """
        candidates = [link for link in self._links if link.can_take(model)]
        if not candidates:
            raise NoWorkerAvailableError(f"no worker is available for model {model!r}")
        link = min(candidates, key=lambda c: len(c.running) * c.average_time)
        request_id = os.urandom(32)
        query = RunningQuery(link, request_id, asyncio.get_running_loop().time())
        link.running[request_id] = query
        link.send(
            TLObject(
                "proxy.runQueryEx",
                {
                    "query": request,
                    "signed_payment": self.voucher_for(link.owner),
                    "coefficient": link.coefficient,
                    "timeout": timeout,
                    "request_id": request_id,
                    "flags": 1,
                    "enable_debug": False,
                },
            )
        )
        return query
