"""``MetricsServer``: the optional HTTP endpoint fleets scrape, ``GET /metrics`` (Prometheus text
format 0.0.4) and ``GET /status.json`` (the earning pipeline and the status line), with the
running totals that keep its counters monotonic and the event-loop lag sampler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from app.core.errors import UserFacingError
from app.core.observable import Observable, Unsubscribe
from app.network.metrics_auth import authorised, require_token
from app.network.metrics_format import CONTENT_TYPE, render_metrics
from app.network.metrics_lag import LoopLagSampler
from app.network.metrics_snapshot import MetricsSnapshot, RunningTotals, Totals

_log = logging.getLogger(__name__)

DEFAULT_BIND = "127.0.0.1"
TokenSource = Callable[[], Awaitable[str]]


class MetricsServer:
    """Serves the app's metrics on ``bind``:``port`` (0: any free port). A service.

    ``snapshot`` is called for every scrape and on every change of the ``watch`` observables (the
    earning status), so that a Stop/Start between two scrapes still reaches the counters.
    ``token`` (a string, or an async function reading one when the server starts) is the bearer
    token every request must carry; without one only a loopback ``bind`` is allowed.
    ``status`` gives the ``/status.json`` body.
    """

    def __init__(
        self,
        snapshot: Callable[[], MetricsSnapshot],
        *,
        port: int,
        bind: str = DEFAULT_BIND,
        token: str | TokenSource = "",
        status: Callable[[], Mapping[str, Any]] | None = None,
        watch: Sequence[Observable[Any]] = (),
        lag: LoopLagSampler | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._port = port
        self._bind = bind.strip() or DEFAULT_BIND
        self._token_source = token
        self._token = ""
        self._status = status
        self._watch = tuple(watch)
        self._unsubscribers: list[Unsubscribe] = []
        self._lag = lag or LoopLagSampler()
        self._totals = RunningTotals()
        self._last = Totals()
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/status.json", self._status_json)
        # A scraper's idle keep-alive connection must not hold up the app's shutdown.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        self._site: web.TCPSite | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one the system chose, for ``port=0``)."""
        server = self._site._server if self._site is not None else None  # aiohttp's socket
        if not isinstance(server, asyncio.Server) or not server.sockets:
            raise RuntimeError("the metrics server is not started")
        return int(server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self._bind}]" if ":" in self._bind else self._bind
        return f"http://{host}:{self.port}"

    def observe(self) -> Totals:
        """Feed the current snapshot into the running totals; returns them."""
        self._last = self._totals.observe(self._snapshot())
        return self._last

    def _changed(self, _: object) -> None:
        self.observe()

    async def start(self) -> None:
        source = self._token_source
        self._token = source if isinstance(source, str) else await source()
        require_token(self._bind, self._token)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self._bind, self._port)
        try:
            await self._site.start()
        except OSError as exc:
            await self.aclose()
            raise UserFacingError(
                f"Could not serve metrics on {self._bind}:{self._port} ({exc.strerror or exc}).",
                hint="Choose a free port (general.metrics_port, or run --metrics-port) or another "
                "address (general.metrics_bind).",
            ) from None
        except BaseException:
            await self.aclose()
            raise
        self.observe()
        self._unsubscribers = [w.subscribe(self._changed) for w in self._watch]
        await self._lag.start()
        _log.info("serving metrics at %s/metrics", self.url)

    async def aclose(self) -> None:
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()
        await self._lag.aclose()
        self._site = None
        await self._runner.cleanup()

    def _refused(self, request: web.Request) -> web.Response | None:
        if authorised(request.headers.get("Authorization"), self._token):
            return None
        return web.Response(
            status=401,
            text="a bearer token is required\n",
            headers={"WWW-Authenticate": 'Bearer realm="cocoon-provider metrics"'},
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        snapshot = self._snapshot()
        self._last = self._totals.observe(snapshot)
        body = render_metrics(snapshot, self._last, loop_lag_s=self._lag.lag_seconds)
        return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def _status_json(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        return web.json_response(dict(self._status()) if self._status is not None else {})
