"""A test-mode COCOON proxy on loopback: accepts workers, routes requests, keeps token tallies.

Speaks the same framing and TL as the reference proxy (``is_test``, fake TON): vouchers are real
Ed25519 signatures over real cells, but "committed to the blockchain" happens instantly.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass

from nacl.signing import SigningKey
from pytoniq_core.boc.address import Address

from app.devnet.worker_link import RunningQuery, WorkerLink
from app.network.connection import LISTENER_KEEPALIVE, Connection, Keepalive
from app.network.tl import TLObject
from app.network.vouchers import sign_voucher

_log = logging.getLogger(__name__)

# The devnet's own addresses; the keys behind them are generated per run.
DEVNET_PROXY_OWNER = "UQAuz15H1ZHrZ_psVrAra7HealMIVeFq0wguqlmFno1f3B-m"
DEVNET_CLIENT_OWNER = "UQCdj43Fh3_wrnCUiARPY38Hv4sUkq2FsQrQUg4VJwxqeqsw"


class NoWorkerAvailableError(Exception):
    """No ready, enabled worker with spare capacity serves the requested model."""


@dataclass(slots=True)
class WorkerTally:
    """Per worker owner, in adjusted tokens; in test mode db and chain commits are immediate."""

    owner: str
    max_tokens: int = 0
    db_tokens: int = 0
    committed_tokens: int = 0
    requests: int = 0


def _friendly(seed: bytes) -> str:
    return str(Address((0, hashlib.sha256(seed).digest())).to_str(is_bounceable=False))  # type: ignore[no-untyped-call]


class TestProxy:
    """The proxy side for workers (``start``/``aclose``) and :meth:`run_query` for clients.

    ``port`` 0 picks a free one (read :attr:`port` after ``start``). ``commit_every`` > 0 makes
    billed tokens voucher-able only every that many seconds, as the reference anchors its state.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        is_test: bool = True,
        signing_key: SigningKey | None = None,
        owner_address: str = DEVNET_PROXY_OWNER,
        client_owner: str = DEVNET_CLIENT_OWNER,
        keepalive: Keepalive = LISTENER_KEEPALIVE,
        commit_every: float = 0.0,
    ) -> None:
        self.is_test = is_test
        self._host = host
        self._port = port
        self._key = signing_key or SigningKey.generate()
        self.public_key = bytes(self._key.verify_key)
        self.owner_address = owner_address
        self.sc_address = _friendly(b"proxy-contract" + self.public_key)
        self._client_owner = client_owner
        self._keepalive = keepalive
        self._server: asyncio.Server | None = None
        self._links: set[WorkerLink] = set()
        self._tallies: dict[str, WorkerTally] = {}
        self._vouchers: dict[str, tuple[int, bytes]] = {}
        # 0: tokens count as anchored on-chain at once; else every ``commit_every`` seconds,
        # like the reference's periodic proxy_save_state (vouchers change only then).
        self._commit_every = commit_every
        self._committer: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the test proxy is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def links(self) -> list[WorkerLink]:
        return [link for link in self._links if link.ready]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_connection, self._host, self._port)
        if self._commit_every > 0:
            self._committer = asyncio.create_task(self._commit_periodically())
        _log.info("test proxy listening for workers on %s:%d", self._host, self.port)

    async def aclose(self) -> None:
        server, self._server = self._server, None
        committer, self._committer = self._committer, None
        if committer is not None:
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
        """The worker-contract address this proxy pays ``owner`` through (deterministic)."""
        return _friendly(b"worker-contract" + self.public_key + owner.encode())

    def tally(self, owner: str) -> WorkerTally:
        tally = self._tallies.get(owner)
        if tally is None:
            tally = self._tallies[owner] = WorkerTally(owner)
        return tally

    def voucher_for(self, owner: str) -> TLObject:
        """A signed voucher for what is committed; re-signed only when that amount changes."""
        tokens = self.tally(owner).committed_tokens
        cached = self._vouchers.get(owner)
        if cached is None or cached[0] != tokens:
            boc = sign_voucher(
                self._key,
                tokens=tokens,
                query_id=int.from_bytes(os.urandom(8), "little"),
                worker_sc_address=self.worker_sc_address(owner),
                excesses_address=self.sc_address,
            )
            cached = self._vouchers[owner] = (tokens, boc)
        return TLObject("proxy.signedPayment", {"data": cached[1]})

    def bill(self, link: WorkerLink, request_id: bytes, tokens: int) -> None:
        """Add a finished request's tokens and send ``proxy.workerRequestPayment``."""
        tally = self.tally(link.owner)
        tally.requests += 1
        tally.max_tokens += tokens
        tally.db_tokens = tally.max_tokens
        if self._commit_every <= 0:
            tally.committed_tokens = tally.db_tokens
        link.send(
            TLObject(
                "proxy.workerRequestPayment",
                {
                    "request_id": request_id,
                    "signed_payment": self.voucher_for(link.owner),
                    "db_tokens": tally.db_tokens,
                    "max_tokens": tally.max_tokens,
                    "request_tokens": tokens,
                    "request_client_owner": self._client_owner,
                },
            )
        )

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._commit_every)
            for tally in self._tallies.values():
                tally.committed_tokens = tally.db_tokens

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
