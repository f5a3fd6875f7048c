"""An OpenAI-compatible mock inference backend on loopback, for tests and the serving benchmark.

Streams like the reference's ``benchmark/server.go`` (NDJSON chunks, then a usage line), or SSE or
one JSON answer, and has failure modes (HTTP 500, hang, garbage, huge body, drop mid-stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from app.engine.endpoint import BackendEndpoint

MODES = (
    "ndjson",
    "sse",
    "json",
    "empty",
    "error500",
    "hang",
    "hang_body",
    "garbage",
    "huge",
    "drop",
)
DEFAULT_USAGE: dict[str, Any] = {
    "prompt_tokens": 34,
    "total_tokens": 134,
    "completion_tokens": 100,
    "completion_tokens_details": {"reasoning_tokens": 10},
    "prompt_tokens_details": {"cached_tokens": 11},
}


@dataclass(frozen=True, slots=True)
class MockBackendConfig:
    """How the mock answers POSTs; ``?mode=&chunks=&bytes=&delay_ms=`` override per request."""

    mode: str = "ndjson"
    chunks: int = 50
    chunk_bytes: int = 128
    delay_ms: int = 0
    model: str = "Qwen/Qwen3-8B"
    usage: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_USAGE))
    huge_bytes: int = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """What the mock received (tests check the worker's rewriting with it)."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


class MockBackend:
    """An aiohttp server on ``127.0.0.1`` (or a Unix socket); a service (``start``/``aclose``)."""

    def __init__(
        self,
        config: MockBackendConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        unix_socket: Path | None = None,
    ) -> None:
        self.config = config or MockBackendConfig()
        self.received: list[ReceivedRequest] = []
        self._host = host
        self._port = port
        self._unix_socket = unix_socket
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def endpoint(self) -> BackendEndpoint:
        if self._unix_socket is not None:
            return BackendEndpoint(base_url="http://engine", unix_socket=self._unix_socket)
        return BackendEndpoint(base_url=self.url)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/{path:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site: web.BaseSite
        if self._unix_socket is not None:
            site = web.UnixSite(self._runner, str(self._unix_socket))
        else:
            site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        if self._unix_socket is None:
            self._port = self._runner.addresses[0][1]

    async def aclose(self) -> None:
        self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": self.config.model, "object": "model"}]}
        )

    def _request_config(self, request: web.Request) -> MockBackendConfig:
        query = request.query
        config = self.config
        if "mode" in query and query["mode"] in MODES:
            config = replace(config, mode=query["mode"])
        numbers = {"chunks": "chunks", "bytes": "chunk_bytes", "delay_ms": "delay_ms"}
        changes: dict[str, Any] = {
            attr: int(query[key]) for key, attr in numbers.items() if query.get(key, "").isdigit()
        }
        if changes:
            config = replace(config, **changes)
        return config

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(
            ReceivedRequest(request.method, request.path, tuple(request.headers.items()), body)
        )
        config = self._request_config(request)
        handler = {
            "ndjson": self._ndjson,
            "sse": self._sse,
            "json": self._json,
            "empty": self._empty,
            "error500": self._error500,
            "hang": self._hang,
            "hang_body": self._hang_body,
            "garbage": self._garbage,
            "huge": self._huge,
            "drop": self._drop,
        }[config.mode]
        return await handler(request, config)

    async def _stream(self, request: web.Request, content_type: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        return response

    async def _ndjson(self, request: web.Request, config: MockBackendConfig) -> web.StreamResponse:
        # server.go says application/json although it streams JSON lines; so do we.
        response = await self._stream(request, "application/json")
        for i in range(config.chunks):
            await response.write(_delta_line(i, config.chunk_bytes))
            await _pause(config)
        await response.write(json.dumps({"usage": config.usage}).encode() + b"\n")
        await response.write_eof()
        return response

    async def _sse(self, request: web.Request, config: MockBackendConfig) -> web.StreamResponse:
        response = await self._stream(request, "text/event-stream")
        for i in range(config.chunks):
            chunk = _completion_chunk(config.model, "x" * max(config.chunk_bytes - 150, 1), i)
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            await _pause(config)
        final = _completion_chunk(config.model, None, config.chunks)
        final["usage"] = config.usage
        await response.write(b"data: " + json.dumps(final).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _json(self, request: web.Request, config: MockBackendConfig) -> web.Response:
        return web.json_response(
            {
                "id": "chatcmpl-mock",
                "object": "chat.completion",
                "model": config.model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "Hello from the mock."},
                    }
                ],
                "usage": config.usage,
            }
        )

    async def _empty(self, request: web.Request, config: MockBackendConfig) -> web.Response:
        return web.Response(status=200, body=b"")

    async def _error500(self, request: web.Request, config: MockBackendConfig) -> web.Response:
        return web.json_response({"error": {"message": "mock failure"}}, status=500)

    async def _hang(self, request: web.Request, config: MockBackendConfig) -> web.Response:
        await self._stopping.wait()
        return web.Response(status=503)

    async def _hang_body(
        self, request: web.Request, config: MockBackendConfig
    ) -> web.StreamResponse:
        response = await self._stream(request, "application/json")
        await response.write(_delta_line(0, config.chunk_bytes))
        await self._stopping.wait()
        return response

    async def _garbage(self, request: web.Request, config: MockBackendConfig) -> web.Response:
        transport = request.transport
        if transport is not None:
            transport.write(b"THIS IS NOT HTTP\r\n\x00\xff garbage\r\n\r\n")
            transport.close()
        return web.Response(status=200)

    async def _huge(self, request: web.Request, config: MockBackendConfig) -> web.StreamResponse:
        response = await self._stream(request, "application/json")
        line = _delta_line(0, 64 * 1024 - 32)
        sent = 0
        with contextlib.suppress(ConnectionError):
            while sent < config.huge_bytes and not self._stopping.is_set():
                await response.write(line)
                sent += len(line)
        return response

    async def _drop(self, request: web.Request, config: MockBackendConfig) -> web.StreamResponse:
        response = await self._stream(request, "application/json")
        for i in range(min(config.chunks, 3)):
            await response.write(_delta_line(i, config.chunk_bytes))
        if request.transport is not None:
            request.transport.abort()
        return response


def _delta_line(i: int, size: int) -> bytes:
    return b'{"delta":"' + b"0" * size + b'","i":' + str(i).encode() + b"}\n"


def _completion_chunk(model: str, content: str | None, i: int) -> dict[str, Any]:
    choices = [] if content is None else [{"index": 0, "delta": {"content": content}}]
    return {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000 + i,
        "model": model,
        "choices": choices,
    }


async def _pause(config: MockBackendConfig) -> None:
    if config.delay_ms > 0:
        await asyncio.sleep(config.delay_ms / 1000)


async def serve_forever(port: int = 8000, mode: str = "ndjson") -> None:
    """Run the mock on ``127.0.0.1:port`` until cancelled; prints the bound port on one line."""
    backend = MockBackend(MockBackendConfig(mode=mode), port=port)
    await backend.start()
    print(backend.url.rsplit(":", 1)[1], flush=True)  # noqa: T201 - the parent reads the port
    try:
        await asyncio.Event().wait()
    finally:
        await backend.aclose()


if __name__ == "__main__":  # pragma: no cover - the benchmark's backend process
    import argparse

    parser = argparse.ArgumentParser(description="OpenAI-compatible mock backend on loopback")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--mode", choices=MODES, default="ndjson")
    options = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(options.port, options.mode))
