"""Throughput through the whole devnet path vs the backend alone, and the worker's CPU per request.

load generator → client API → test-mode proxy → worker → mock backend (50 NDJSON chunks of 128
bytes + a usage line, like the reference ``benchmark/server.go``), at concurrency 1, 30 and 60,
each request on a fresh connection (``hey -disable-keepalive``). The baseline, measured in the
same run, is the same load straight against the mock backend. Backend, proxy + client API and the
worker each run in their own process; the worker's CPU comes from ``psutil`` (``/proc/<pid>/stat``).
Target: ≤ 0.6 worker CPU-ms per 50-chunk request.

Run from the repository root: ``.venv/bin/python -m benchmarks.worker_throughput``
(``--mode sse`` for SSE answers, ``--profile FILE`` to write a cProfile of the worker process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
import psutil

if TYPE_CHECKING:
    from app.network.payment_store import BilledJob, ProxyAccount
    from app.network.proxy_payments import PaymentBook
    from app.network.worker import CocoonWorker

MODEL = "Qwen/Qwen3-8B"
FULL_MODEL = f"{MODEL}@bench:0000"
OWNER = "UQAuz15H1ZHrZ_psVrAra7HealMIVeFq0wguqlmFno1f3B-m"
TARGET_CPU_MS = 0.6
CONCURRENCY = (1, 30, 60)
BODY = (
    b'{"stream":true,"model":"Qwen/Qwen3-8B","messages":[{"role":"user","content":'
    b'"Benchmark request"}],"max_tokens":8000}'
)


# ----------------------------------------------------------------------------- child roles
async def _wait_for_stdin_eof() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def _role_backend(mode: str) -> None:
    from app.devnet.mock_backend import MockBackend, MockBackendConfig

    backend = MockBackend(MockBackendConfig(mode=mode, chunks=50, chunk_bytes=128, model=MODEL))
    await backend.start()
    print("READY", backend.url, flush=True)
    await _wait_for_stdin_eof()
    await backend.aclose()


async def _role_proxy() -> None:
    from app.devnet.client_api import ClientApi
    from app.devnet.test_proxy import TestProxy

    # The reference proxy anchors (and re-signs vouchers) every 30-60 s; so does this one here.
    proxy = TestProxy(db_commit_every=1.5, chain_commit_every=30.0)
    await proxy.start()
    api = ClientApi(proxy)
    await api.start()
    print("READY", proxy.port, api.url, flush=True)
    await _wait_for_stdin_eof()
    await api.aclose()
    await proxy.aclose()


def _payment_book(ledger: str, folder: str) -> PaymentBook:
    """The worker's payment book: the app's (SQLite file), or one that keeps only what a
    session needs in memory and records nothing (the "no ledger" baseline)."""
    from pathlib import Path

    from app.network.payment_store import PaymentStore
    from app.network.proxy_payments import PaymentBook

    class _NoLedger(PaymentBook):
        def put(self, account: ProxyAccount) -> None:
            self._accounts[account.worker_sc] = account  # no publishing, nothing to write

        def add_billed(self, job: BilledJob) -> None:
            pass

    if ledger == "none":
        return _NoLedger(PaymentStore(None))
    return PaymentBook(PaymentStore(Path(folder) / "payments.sqlite3"))


async def _role_worker(
    backend_url: str, proxy_port: int, ledger: str = "file", folder: str = ""
) -> None:
    from app.engine.endpoint import BackendEndpoint
    from app.network.request_server import RequestServer
    from app.network.worker import CocoonWorker
    from app.network.worker_config import WorkerConfig

    server = RequestServer(
        BackendEndpoint.from_url(backend_url), model=FULL_MODEL, max_active_requests=200
    )
    await server.start()
    config = WorkerConfig.from_strings(
        proxies=[f"127.0.0.1:{proxy_port}"],
        model=FULL_MODEL,
        owner_address=OWNER,
        max_active_requests=200,
    )
    with tempfile.TemporaryDirectory() as scratch:
        book = _payment_book(ledger, folder or scratch)
        await book.start()
        worker = CocoonWorker(config, server=server, payments=book)
        await _serve_until_eof(worker)
        await book.aclose()
    await server.aclose()


async def _serve_until_eof(worker: CocoonWorker) -> None:
    await worker.start()
    ready = asyncio.Event()
    worker.status.subscribe(lambda s: ready.set() if s.connected_proxies else None, replay=True)
    await ready.wait()
    print("READY", flush=True)
    # Lines on stdin switch the worker on and off (ledger_cost measures one variant at a time).
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if line.strip() in ("enable", "disable"):
            worker.set_enabled(line.strip() == "enable", source="benchmark")
    await worker.aclose()


def _child_main(args: argparse.Namespace) -> None:
    if args.role == "backend":
        asyncio.run(_role_backend(args.mode))
    elif args.role == "proxy":
        asyncio.run(_role_proxy())
    else:
        # CPU time, not wall time: idle epoll waits must not dominate the profile.
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        if profiler is not None:
            profiler.enable()
        asyncio.run(_role_worker(args.backend_url, args.proxy_port, args.ledger))
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)


# ----------------------------------------------------------------------------- link layer
def link_layer_costs(rounds: int = 20_000) -> dict[str, float]:
    """µs per operation the proxy link adds to every request (no I/O), for the breakdown."""
    import timeit

    from app.network.answer import FinalInfo, TokensUsed
    from app.network.answer_sink import final_info_tl
    from app.network.proxy_session import parse_http_request
    from app.network.tl import TLObject, decode, encode, encode_fields

    def header(name: str, value: str) -> TLObject:
        return TLObject("http.header", {"name": name, "value": value})

    client_headers = [
        ("Host", "127.0.0.1:1"),
        ("User-Agent", "Python/3.11 aiohttp/3.14.5"),
        ("Accept", "*/*"),
        ("Accept-Encoding", "gzip, deflate"),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(BODY))),
    ]
    request = encode(
        TLObject(
            "http.request",
            {
                "method": "POST",
                "url": "/v1/chat/completions",
                "http_version": "HTTP/1.1",
                "headers": [header(n, v) for n, v in client_headers],
                "payload": BODY,
            },
        )
    )
    run = encode_fields(
        "tcp.packet",
        {
            "data": encode(
                TLObject(
                    "proxy.runQueryEx",
                    {
                        "query": request,
                        "signed_payment": TLObject("proxy.signedPayment", {"data": bytes(180)}),
                        "coefficient": 1500,
                        "timeout": 108.3,
                        "request_id": bytes(32),
                        "flags": 1,
                        "enable_debug": False,
                    },
                )
            )
        },
    )
    answer_headers = [
        ("content-type", "application/json"),
        ("date", "Wed, 25 Nov 2026"),
        ("server", "Python/3.11 aiohttp/3.14.5"),
        ("Connection", "Close"),
        ("X-Cocoon-Worker-Start", "1764057600.123456"),
        ("X-Cocoon-Worker-End", "1764057600.123999"),
        ("Transfer-Encoding", "chunked"),
    ]
    final = FinalInfo(TokensUsed(34, 16, 135, 15, 200), None, 1.0, 2.0)

    def decode_run() -> object:
        return parse_http_request(decode(decode(run, expect="tcp.Packet")["data"])["query"])

    def encode_head() -> bytes:
        response = TLObject(
            "http.response",
            {
                "http_version": "HTTP/1.1",
                "status_code": 200,
                "reason": "OK",
                "headers": [header(n, v) for n, v in answer_headers],
                "payload": b"",
            },
        )
        return encode_fields(
            "tcp.packet",
            {
                "data": encode_fields(
                    "proxy.queryAnswerEx",
                    {"request_id": bytes(32), "answer": encode(response), "flags": 0},
                )
            },
        )

    def encode_last_part() -> bytes:
        return encode_fields(
            "tcp.packet",
            {
                "data": encode_fields(
                    "proxy.queryAnswerPartEx",
                    {
                        "request_id": bytes(32),
                        "answer": b"x" * 6600,
                        "flags": 1,
                        "final_info": final_info_tl(final),
                    },
                )
            },
        )

    ops = {
        "decode runQueryEx + http.request": decode_run,
        "encode queryAnswerEx head": encode_head,
        "encode last queryAnswerPartEx": encode_last_part,
    }
    return {name: timeit.timeit(op, number=rounds) / rounds * 1e6 for name, op in ops.items()}


# ----------------------------------------------------------------------------- parent
@dataclass(frozen=True, slots=True)
class Round:
    concurrency: int
    requests: int
    seconds: float
    latencies: tuple[float, ...]
    failures: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def load(url: str, concurrency: int, requests: int) -> Round:
    """``requests`` POSTs, ``concurrency`` at a time, each on a new TCP connection."""
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    latencies: list[float] = []
    failures = 0
    remaining = requests
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal remaining, failures
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                async with session.post(
                    url, data=BODY, headers={"Content-Type": "application/json"}
                ) as response:
                    body = await response.read()
                    if response.status != 200:
                        failures += 1
                        if failures == 1:
                            print(f"  first failure: HTTP {response.status} {body[:200]!r}")
                latencies.append(time.perf_counter() - start)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Round(concurrency, requests, elapsed, tuple(latencies), failures)


class Child:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "benchmarks.worker_throughput", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        stdout = self.proc.stdout
        line = stdout.readline().split() if stdout is not None else []
        if not line or line[0] != "READY":
            self.stop()
            raise RuntimeError(f"child {args[:2]} failed to start")
        self.ready = line[1:]

    def cpu_seconds(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the child so far."""
        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user), float(times.system)

    def stop(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _requests_for(concurrency: int, scale: float) -> int:
    return max(50, int(max(200, 12 * concurrency) * scale))


def _line(label: str, r: Round) -> str:
    return (
        f"  {label:<16} {r.rps:8.1f} req/s  p50 {r.percentile(0.5):7.1f} ms  "
        f"p99 {r.percentile(0.99):7.1f} ms  ({r.requests} requests, {r.failures} failed)"
    )


async def _measure(
    backend: Child, proxy: Child, worker: Child, concurrency: Sequence[int], scale: float
) -> list[tuple[Round, Round, float]]:
    direct_url = f"{backend.ready[0]}/v1/chat/completions"
    api_url = f"{proxy.ready[1]}/v1/chat/completions"
    await load(api_url, 4, 40)  # warm-up: imports, pools, first handshake paths
    await load(direct_url, 4, 40)
    results = []
    for c in concurrency:
        n = _requests_for(c, scale)
        direct = await load(direct_url, c, n)
        user0, sys0 = worker.cpu_seconds()
        through = await load(api_url, c, n)
        user1, sys1 = worker.cpu_seconds()
        user_ms, sys_ms = (user1 - user0) * 1000 / n, (sys1 - sys0) * 1000 / n
        cpu_ms = user_ms + sys_ms
        results.append((direct, through, cpu_ms))
        print(f"concurrency {c}:")
        print(_line("direct backend", direct))
        print(_line("through worker", through))
        print(
            f"  ratio worker/direct: {through.rps / direct.rps:.2f}× req/s, "
            f"p50 {through.percentile(0.5) / direct.percentile(0.5):.2f}× latency; "
            f"worker CPU {cpu_ms:.3f} ms/request (user {user_ms:.3f} + system {sys_ms:.3f}; "
            f"target ≤ {TARGET_CPU_MS})",
            flush=True,
        )
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--role", choices=["backend", "proxy", "worker"], default=None)
    parser.add_argument("--mode", choices=["ndjson", "sse"], default="ndjson")
    parser.add_argument("--backend-url", default="")
    parser.add_argument("--proxy-port", type=int, default=0)
    parser.add_argument("--profile", default="", help="write a cProfile of the worker here")
    parser.add_argument("--ledger", choices=["file", "none"], default="file")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)))
    args = parser.parse_args(argv)
    if args.role is not None:
        _child_main(args)
        return
    print(
        f"worker_throughput: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, mode {args.mode}, 50 chunks × 128 B"
    )
    backend = Child("--role", "backend", "--mode", args.mode)
    proxy = Child("--role", "proxy")
    worker_args = ["--role", "worker", "--backend-url", backend.ready[0]]
    worker_args += ["--proxy-port", proxy.ready[0]]
    if args.profile:
        worker_args += ["--profile", args.profile]
    for name, micros in link_layer_costs().items():
        print(f"  link layer: {name}: {micros:.1f} µs")
    worker = Child(*worker_args)
    try:
        concurrency = [int(c) for c in args.concurrency.split(",")]
        asyncio.run(_measure(backend, proxy, worker, concurrency, args.scale))
    finally:
        for child in (worker, proxy, backend):
            child.stop()


if __name__ == "__main__":
    main()
