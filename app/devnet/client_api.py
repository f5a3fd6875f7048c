"""The devnet's client-facing OpenAI-compatible HTTP endpoint (aiohttp, loopback).

Like the reference client-runner: wraps each request into ``http.request`` TL, hands it to the
test-mode proxy and relays the worker's answer, streaming chunks as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from app.devnet.test_proxy import NoWorkerAvailableError, TestProxy
from app.devnet.worker_link import (
    AnswerChunk,
    AnswerEnd,
    AnswerEvent,
    AnswerFailed,
    AnswerHead,
)
from app.network.tl import TLObject, encode

_log = logging.getLogger(__name__)

# Fields only the client understands; the reference client strips them before forwarding.
_CLIENT_FIELDS = ("max_coefficient", "timeout", "enable_debug", "request_guid")
_DROP_REQUEST_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
_DROP_RESPONSE_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive"}
)
DEFAULT_TIMEOUT = 120.0
# Each hop takes 5 % off the client's timeout so the inner one fires first (reference).
_HOP_FACTOR = 0.95


class ClientApi:
    """``POST /v1/chat/completions``, ``POST /v1/completions``, ``GET /v1/models``."""

    def __init__(
        self,
        proxy: TestProxy,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._proxy = proxy
        self._host = host
        self._port = port
        self._default_timeout = default_timeout
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._complete)
        app.router.add_post("/v1/completions", self._complete)
        app.router.add_get("/v1/models", self._models)
        # A client that hangs up must free its worker slot at once: cancel its handler.
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,
            shutdown_timeout=5.0,
        )
        self._site: web.TCPSite | None = None

    @property
    def port(self) -> int:
        if self._site is None:
            raise RuntimeError("the client API is not started")
        server = self._site._server  # aiohttp keeps the bound socket here
        if not isinstance(server, asyncio.Server):
            raise RuntimeError("the client API has no listening socket")
        return int(server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await self._site.start()
        except BaseException:  # e.g. the port is taken: leave nothing behind for the caller
            await self.aclose()
            raise

    async def aclose(self) -> None:
        self._site = None
        await self._runner.cleanup()

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "owned_by": "cocoon"} for m in self._proxy.models()]
        return web.json_response({"object": "list", "data": data})

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return _error(400, "request body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return _error(400, "request body must be a JSON object with a 'model' string")
        timeout = _timeout(body.get("timeout"), self._default_timeout)
        if timeout is None:
            return _error(400, "'timeout' must be a positive number of seconds")
        for key in _CLIENT_FIELDS:
            body.pop(key, None)
        if "max_completion_tokens" in body:
            body.pop("max_tokens", None)
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        headers = [
            TLObject("http.header", {"name": k, "value": v})
            for k, v in request.headers.items()
            if k.lower() not in _DROP_REQUEST_HEADERS
        ]
        headers.append(
            TLObject("http.header", {"name": "Content-Length", "value": str(len(payload))})
        )
        wrapped = encode(
            TLObject(
                "http.request",
                {
                    "method": request.method,
                    "url": request.path,
                    "http_version": f"HTTP/{request.version.major}.{request.version.minor}",
                    "headers": headers,
                    "payload": payload,
                },
            )
        )
        try:
            query = self._proxy.run_query(
                model=body["model"], request=wrapped, timeout=timeout * _HOP_FACTOR * _HOP_FACTOR
            )
        except NoWorkerAvailableError as exc:
            return _error(503, str(exc))
        try:
            async with asyncio.timeout(timeout * _HOP_FACTOR):
                return await self._relay(request, query.events())
        except TimeoutError:
            return _error(504, "the worker did not answer in time")
        finally:
            query.abandon()

    async def _relay(
        self, request: web.Request, events: AsyncIterator[AnswerEvent]
    ) -> web.StreamResponse:
        response: web.StreamResponse | None = None
        async for event in events:
            if isinstance(event, AnswerHead):
                response = web.StreamResponse(status=event.status, reason=event.reason or None)
                for name, value in event.headers:
                    if name.lower() not in _DROP_RESPONSE_HEADERS:
                        response.headers.add(name, value)
                response.enable_chunked_encoding()
                await response.prepare(request)
            elif isinstance(event, AnswerChunk) and response is not None:
                await response.write(event.data)
            elif isinstance(event, AnswerEnd) and response is not None:
                await response.write_eof()
                return response
            elif isinstance(event, AnswerFailed):
                if response is None:
                    return _error(502, f"worker error {event.code}: {event.message}")
                # Headers are out already: the only honest signal left is a cut connection.
                if request.transport is not None:
                    with contextlib.suppress(Exception):
                        request.transport.close()
                return response
        return _error(502, "the worker ended the answer without a head")


def _timeout(value: Any, default: float) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "code": status}}, status=status)
