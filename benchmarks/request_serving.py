"""Worker CPU per streamed request, end to end: ``RequestServer.serve`` vs an aiohttp forwarder.

Run from the repository root: ``.venv/bin/python -m benchmarks.request_serving``. The mock backend
(the reference benchmark's shape: 50 NDJSON chunks of 128 bytes and a usage line) runs in a child
process so its CPU is not counted. Each answer part is TL-encoded (``proxy.queryAnswerPartEx``),
framed and written to a loopback socket, as the proxy session does. Figures are this process's
CPU time (``getrusage``: user + system, all threads) per request; target 0.6 ms. The baseline,
measured in the same run, is the same path with the backend leg done by an aiohttp
``ClientSession`` (what ``backend_client.py`` would otherwise use) and no validation or job record.
"""

from __future__ import annotations

import asyncio
import json
import platform
import resource
import struct
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from app.core.billing import BillingParams
from app.engine.endpoint import BackendEndpoint
from app.network.answer import FinalInfo, Headers, HttpRequest, QueryContext
from app.network.answer_sink import final_info_tl
from app.network.jobs import JobStore
from app.network.request_server import RequestServer
from app.network.tl import encode_query_answer_part
from app.network.usage import AnswerMeter

TARGET_MS = 0.6
REQUESTS = 400
CONCURRENCY = 8
MODEL = "Qwen/Qwen3-8B"
_PAYLOAD = json.dumps(
    {"model": MODEL, "messages": [{"role": "user", "content": "bench"}], "stream": True}
).encode()
_REQUEST = HttpRequest(
    "POST", "/v1/chat/completions", "HTTP/1.1", (("Content-Type", "application/json"),), _PAYLOAD
)
_CHILD = """
import asyncio, sys
from app.devnet.mock_backend import MockBackend, MockBackendConfig

async def discard(reader, writer):
    try:
        while await reader.read(1 << 16):
            pass
    except asyncio.CancelledError:
        pass

async def main():
    delay = int(sys.argv[1])
    backend = MockBackend(MockBackendConfig(delay_ms=delay))
    await backend.start()
    sink = await asyncio.start_server(discard, "127.0.0.1", 0)
    print(backend.url, sink.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    sink.close()
    await backend.aclose()

asyncio.run(main())
"""


class ProxySink:
    """Encodes every answer message as the proxy session would and writes it to a socket."""

    def __init__(self, writer: asyncio.StreamWriter, request_id: bytes) -> None:
        self._writer = writer
        self._request_id = request_id
        self._seqno = 0

    def _send(self, payload: bytes) -> None:
        self._writer.write(struct.pack("<Ii", len(payload), self._seqno) + payload)
        self._seqno += 1

    async def head(
        self,
        status: int,
        reason: str,
        headers: Headers,
        http_version: str = "HTTP/1.1",
        final: FinalInfo | None = None,
    ) -> None:
        self._send(b"head" + str(status).encode() + b"".join(n.encode() for n, _ in headers))

    async def part(self, data: bytes, final: FinalInfo | None = None) -> None:
        info = None if final is None else final_info_tl(final)
        self._send(encode_query_answer_part(self._request_id, data, 0 if info is None else 1, info))
        if self._writer.transport.get_write_buffer_size() > 1 << 20:
            await self._writer.drain()

    async def error(self, code: int, message: str, final: FinalInfo) -> None:
        raise RuntimeError(f"benchmark request failed: {code} {message}")


Serve = Callable[[int, ProxySink], Awaitable[None]]


@dataclass(frozen=True)
class Cost:
    """CPU milliseconds per request: user (Python) and system (kernel: sockets, epoll)."""

    user: float
    system: float

    @property
    def total(self) -> float:
        return self.user + self.system

    def __str__(self) -> str:
        return f"{self.total:.3f} CPU-ms/request (user {self.user:.3f} + sys {self.system:.3f})"


async def measure(serve: Serve, writer: asyncio.StreamWriter) -> Cost:
    """CPU per request over ``REQUESTS`` requests, ``CONCURRENCY`` at a time."""
    for n in range(20):  # warm-up: connections, caches
        await serve(n, ProxySink(writer, bytes([n]) * 32))
    counter = iter(range(REQUESTS))

    async def lane() -> None:
        for n in counter:
            await serve(n, ProxySink(writer, n.to_bytes(32, "big")))

    before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    return Cost(
        (after.ru_utime - before.ru_utime) * 1000 / REQUESTS,
        (after.ru_stime - before.ru_stime) * 1000 / REQUESTS,
    )


async def run(delay_ms: int) -> tuple[Cost, Cost]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        str(delay_ms),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        if child.stdout is None:
            raise RuntimeError("no pipe to the backend process")
        url, sink_port = (await child.stdout.readline()).decode().split()
        _, writer = await asyncio.open_connection("127.0.0.1", int(sink_port))
        with tempfile.TemporaryDirectory() as tmp:
            jobs = JobStore(Path(tmp) / "jobs.sqlite3")
            await jobs.start()
            server = RequestServer(
                BackendEndpoint(base_url=url),
                model=MODEL,
                billing=BillingParams(),
                jobs=jobs,
            )

            async def ours(n: int, sink: ProxySink) -> None:
                record = await server.serve(
                    QueryContext(n.to_bytes(32, "big"), 1500, 60.0), _REQUEST, sink
                )
                if record.tokens.total_tokens_used != 200:
                    raise RuntimeError(f"bad billing {record}")

            ours_ms = await measure(ours, writer)
            await server.aclose()
            await jobs.aclose()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

            async def baseline(n: int, sink: ProxySink) -> None:
                meter = AnswerMeter(1500, BillingParams())
                async with session.post(
                    url + "/v1/chat/completions", data=_PAYLOAD, headers=dict(_REQUEST.headers)
                ) as response:
                    meter.set_content_type(response.headers.get("Content-Type", ""))
                    await sink.head(
                        response.status, response.reason or "", tuple(response.headers.items())
                    )
                    async for data in response.content.iter_any():
                        out = meter.feed(data)
                        if out:
                            await sink.part(out)
                await sink.part(meter.finish(), FinalInfo(meter.tokens, None, 0.0, 0.0))

            baseline_ms = await measure(baseline, writer)
        writer.close()
    finally:
        await child.communicate(b"")
    return ours_ms, baseline_ms


def main() -> None:
    print(
        f"python {platform.python_version()} on {platform.machine()}, {REQUESTS} requests, "
        f"{CONCURRENCY} concurrent, 50 NDJSON chunks x 128 B + usage line"
    )
    for delay_ms, label in ((0, "chunks back to back"), (2, "chunks 2 ms apart")):
        ours, baseline = asyncio.run(run(delay_ms))
        verdict = "meets" if ours.total <= TARGET_MS else "MISSES"
        print(f"{label}:")
        print(f"  RequestServer     {ours} ({verdict} the {TARGET_MS} ms target)")
        print(f"  aiohttp baseline  {baseline}")
        print(f"  ratio RequestServer / baseline: {ours.total / baseline.total:.2f}")


if __name__ == "__main__":
    main()
