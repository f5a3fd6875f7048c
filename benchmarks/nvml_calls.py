"""Cost of running NVML calls off the event loop: a daemon thread per call vs ``asyncio.to_thread``.

Telemetry runs every NVML call in its own daemon thread (so a call hung in the driver cannot keep
the app from quitting). This measures what that costs against the baseline ``asyncio.to_thread``
(pooled threads) in the same run: µs per trivial call, and µs per full sampling round of 8 GPUs
through ``GpuTelemetry`` with the test suite's fake ``pynvml`` (so it times our overhead, not a
driver). Run from the repository root: ``.venv/bin/python -m benchmarks.nvml_calls``.
"""

from __future__ import annotations

import asyncio
import os
import platform
import time
from collections.abc import Awaitable, Callable

from app.engine.gpu_probe import run_in_daemon_thread
from app.engine.telemetry import GpuTelemetry
from tests.fakes.fake_pynvml import FakeNvml

CALLS = 2000
ROUNDS = 200
GPUS = 8


def _nothing() -> int:
    return 1


async def _per_call_us(call: Callable[[], Awaitable[int]]) -> float:
    for _ in range(50):  # warm-up (thread pool creation, caches)
        await call()
    start = time.perf_counter()
    for _ in range(CALLS):
        await call()
    return (time.perf_counter() - start) / CALLS * 1e6


async def _round_us() -> float:
    fake = FakeNvml(GPUS)
    telemetry = GpuTelemetry(fake.module)
    await telemetry.sample_once()
    start = time.perf_counter()
    for _ in range(ROUNDS):
        await telemetry.sample_once()
    elapsed = (time.perf_counter() - start) / ROUNDS * 1e6
    await telemetry.aclose()
    return elapsed


async def main() -> None:
    daemon = await _per_call_us(lambda: run_in_daemon_thread(_nothing))
    pooled = await _per_call_us(lambda: asyncio.to_thread(_nothing))
    round_us = await _round_us()
    cores = os.cpu_count()
    print(f"machine: {platform.machine()}, {cores} cores, python {platform.python_version()}")
    print(f"daemon thread per call   : {daemon:8.1f} µs/call")
    print(f"asyncio.to_thread (base) : {pooled:8.1f} µs/call")
    print(f"ratio daemon / baseline  : {daemon / pooled:8.2f}x")
    share = round_us / 1e4  # percent of the default 1 s sampling interval
    print(f"one round, {GPUS} fake GPUs  : {round_us:8.1f} µs ({share:.3f} % of a 1 s interval)")


if __name__ == "__main__":
    asyncio.run(main())
