"""Worker CPU per request with the earnings ledger (the app's SQLite payment book) and without it.

Same path as ``worker_throughput`` (load → client API → test proxy → worker → mock backend, each
in its own process; worker CPU from ``psutil``). Two worker processes, one per variant, are
measured in alternation (A B A B …) against the same proxy and backend, so drift hits both; the
"no ledger" baseline verifies vouchers as always but records nothing. The figure to look at is
the difference in worker CPU-ms per request and its spread across rounds.

Run from the repository root: ``.venv/bin/python -m benchmarks.ledger_cost [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
from collections.abc import Sequence

from benchmarks.worker_throughput import Child, load

CONCURRENCY = 30
REQUESTS = 600


async def _round(worker: Child, url: str, requests: int) -> float:
    """Worker CPU-ms per request over one load of ``requests``."""
    user0, sys0 = worker.cpu_seconds()
    result = await load(url, CONCURRENCY, requests)
    user1, sys1 = worker.cpu_seconds()
    if result.failures:
        raise RuntimeError(f"{result.failures} requests failed")
    return ((user1 - user0) + (sys1 - sys0)) * 1000 / requests


async def _measure(workers: dict[str, Child], url: str, rounds: int, requests: int) -> None:
    await load(url, 4, 60)  # warm-up: imports, pools, first handshakes
    samples: dict[str, list[float]] = {name: [] for name in workers}
    for index in range(rounds):
        for name, worker in workers.items():
            # Only this variant is connected while it is measured: the other one waits disabled.
            for other in workers.values():
                other.proc.stdin.write("enable\n" if other is worker else "disable\n")  # type: ignore[union-attr]
                other.proc.stdin.flush()  # type: ignore[union-attr]
            await asyncio.sleep(0.5)
            samples[name].append(await _round(worker, url, requests))
        print(
            f"  round {index + 1}: "
            + ", ".join(f"{name} {values[-1]:.3f} ms" for name, values in samples.items()),
            flush=True,
        )
    base = statistics.median(samples["no ledger"])
    with_ledger = statistics.median(samples["ledger"])
    spread = max(statistics.pstdev(v) for v in samples.values())
    print(f"no ledger (baseline): {base:.3f} worker CPU-ms/request (median of {rounds})")
    print(f"ledger (SQLite file): {with_ledger:.3f} worker CPU-ms/request")
    print(
        f"ratio ledger/baseline: {with_ledger / base:.3f}×; difference "
        f"{with_ledger - base:+.3f} ms/request; round-to-round spread ±{spread:.3f} ms"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=REQUESTS)
    args = parser.parse_args(argv)
    print(
        f"ledger_cost: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; concurrency {CONCURRENCY}, {args.requests} requests/round"
    )
    backend = Child("--role", "backend", "--mode", "ndjson")
    proxy = Child("--role", "proxy")
    common = ["--role", "worker", "--backend-url", backend.ready[0], "--proxy-port", proxy.ready[0]]
    workers = {
        "no ledger": Child(*common, "--ledger", "none"),
        "ledger": Child(*common, "--ledger", "file"),
    }
    try:
        asyncio.run(
            _measure(workers, f"{proxy.ready[1]}/v1/chat/completions", args.rounds, args.requests)
        )
    finally:
        for child in (*workers.values(), proxy, backend):
            child.stop()


if __name__ == "__main__":
    main()
