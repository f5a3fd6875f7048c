"""Proof-of-work solve speed for the router leg (``app/network/tcp_pow.py``, docs/protocol.md §2.4).

Run from the repository root: ``.venv/bin/python -m benchmarks.pow_solve [--difficulties 16,20,24]
[--trials 10]``. Measured in the same run:

* the baseline: a single-thread tight loop of ``hashlib.sha256(salt + nonce).digest()`` and the
  check, run alone;
* ``search_range`` (the solver's inner loop) on one thread, and on two threads at once (hashlib
  keeps the GIL for short inputs, so this shows whether threads can help);
* what starting parallel workers costs: the solver's own worker processes, and for comparison a
  ``multiprocessing`` spawn pool, bare and with ``__main__`` set to the installed entry point;
* ``solve_counted`` end to end at each difficulty, on one thread (``workers=1``) and with the
  default choice, over seeded random salts.

Rates are hashes tried per second; each solve's time varies a lot (the work is geometric), the rate
much less. The ratio compares each rate with the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app.network import tcp_pow
from app.network.pow_search import default_workers, search_range
from app.network.tcp_pow import THREAD_MAX_DIFFICULTY, PowChallenge, solve_counted

_SALT = bytes(range(16))
_NO_SOLUTION = 64  # a difficulty no nonce in the measured ranges meets: every try runs
# Starts a spawn pool in a fresh interpreter, with __main__ standing for MAIN (or for nothing).
_POOL_PROBE = """
import multiprocessing, sys, time
from concurrent.futures import ProcessPoolExecutor
if sys.argv[1]:
    sys.modules["__main__"].__file__ = sys.argv[1]
started = time.perf_counter()
with ProcessPoolExecutor(int(sys.argv[2]), mp_context=multiprocessing.get_context("spawn")) as pool:
    list(pool.map(abs, range(int(sys.argv[2]))))
print(time.perf_counter() - started)
"""


def best(measure: Callable[[], float], repeat: int = 3) -> float:
    """The highest of ``repeat`` rates: the machine is shared, so noise only ever slows a run."""
    return max(measure() for _ in range(repeat))


def baseline_rate(hashes: int) -> float:
    """The plain loop a first version would write: a fresh hash and the full check per try."""
    sha256 = hashlib.sha256
    limit = 1 << (64 - _NO_SOLUTION)
    started = time.perf_counter()
    for nonce in range(hashes):
        digest = sha256(_SALT + nonce.to_bytes(8, "little")).digest()
        if int.from_bytes(digest[:8], "little") < limit:
            break
    return hashes / (time.perf_counter() - started)


def search_rate(lows: int) -> float:
    """``search_range`` on this thread, no solution in range."""
    started = time.perf_counter()
    _, tried = search_range(_SALT, 0, lows, _NO_SOLUTION)
    return tried / (time.perf_counter() - started)


def threads_rate(lows: int, threads: int) -> float:
    """``search_range`` on ``threads`` threads at once; the total rate."""
    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        futures = [
            pool.submit(search_range, _SALT, i * lows, lows, _NO_SOLUTION) for i in range(threads)
        ]
        tried = sum(future.result()[1] for future in futures)
    return tried / (time.perf_counter() - started)


def worker_start_ms(workers: int) -> float:
    """Start the solver's worker processes on a challenge the first try answers, and reap them."""
    started = time.perf_counter()
    # The private entry: solve_counted would keep so easy a challenge on a thread.
    asyncio.run(tcp_pow._search_in_processes(_SALT, 0, workers, None))
    return (time.perf_counter() - started) * 1e3


def pool_start_ms(workers: int, main: str) -> float:
    """A spawn pool's start in a fresh interpreter; ``main`` is the script __main__ stands for."""
    probe = [sys.executable, "-c", _POOL_PROBE, main, str(workers)]
    done = subprocess.run(probe, capture_output=True, check=True, text=True)  # noqa: S603 - fixed argv
    return float(done.stdout) * 1e3


async def solve_figures(
    difficulty: int, trials: int, workers: int | None, seed: int
) -> tuple[float, float]:
    """Mean seconds per solve and hashes per second over ``trials`` seeded salts."""
    rng = random.Random(seed)  # seeded so that every run solves the same salts
    total_hashes = 0
    total_seconds = 0.0
    for _ in range(trials):
        challenge = PowChallenge(difficulty, rng.randbytes(16))
        started = time.perf_counter()
        _, hashes = await solve_counted(challenge, workers=workers)
        total_seconds += time.perf_counter() - started
        total_hashes += hashes
    return total_seconds / trials, total_hashes / total_seconds


def _difficulties(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(not 0 <= value <= 28 for value in values):
        raise argparse.ArgumentTypeError("difficulties are 0 to 28, comma-separated")
    return values


def _span(values: list[float]) -> str:
    return f"{min(values):.0f}–{max(values):.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--difficulties", type=_difficulties, default=[16, 20, 24])
    parser.add_argument("--trials", type=int, default=10, help="salts per difficulty and mode")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    workers = default_workers()
    print("Proof-of-work solve rate (hashes tried per second)")
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, default workers {workers}"
    )
    lows = 16  # 524 288 tries per measurement
    base = best(lambda: baseline_rate(lows * 32768))
    single = best(lambda: search_rate(lows))
    two_threads = best(lambda: threads_rate(lows // 2, 2))
    print(f"{'case':44} {'Mh/s':>7} {'ratio':>6}")
    print(f"{'baseline: sha256(salt+nonce) loop, 1 thread':44} {base / 1e6:7.2f} {1.0:6.2f}")
    print(f"{'search_range, 1 thread':44} {single / 1e6:7.2f} {single / base:6.2f}")
    print(
        f"{'search_range, 2 threads at once (GIL)':44} "
        f"{two_threads / 1e6:7.2f} {two_threads / base:6.2f}"
    )
    count = max(workers, 2)
    print(f"starting {count} workers, then reaping them:")
    print(f"  solver's worker processes: {_span([worker_start_ms(count) for _ in range(5)])}")
    print(f"  spawn pool, bare __main__: {_span([pool_start_ms(count, '') for _ in range(3)])}")
    entry = Path(sys.executable).with_name("cocoon-provider")
    if entry.is_file():
        starts = [pool_start_ms(count, str(entry)) for _ in range(3)]
        print(f"  spawn pool, __main__ = the installed cocoon-provider script: {_span(starts)}")
    print(f"{'difficulty':>10} {'mode':>22} {'s/solve':>8} {'Mh/s':>7} {'ratio':>6}")
    for difficulty in args.difficulties:
        auto = "1 thread" if difficulty <= THREAD_MAX_DIFFICULTY else f"{workers} processes"
        for label, chosen in (("workers=1", 1), (f"default: {auto}", None)):
            seconds, rate = asyncio.run(solve_figures(difficulty, args.trials, chosen, args.seed))
            print(
                f"{difficulty:>10} {label:>22} {seconds:8.3f} {rate / 1e6:7.2f} {rate / base:6.2f}"
            )


if __name__ == "__main__":
    main()
