"""What metering energy per job costs: the meter alone, and end to end in ``RequestServer``.

Run from the repository root: ``.venv/bin/python -m benchmarks.job_energy``.

1. The meter alone: CPU per job (start + finish, one GPU reading a second of simulated time,
   a job finishing every millisecond) with 1 to 200 jobs in flight. Baseline, same run: the
   same meter with the previous per-stretch split (every slice cut at every start and end, the
   running jobs counted again for each piece), which grows with the square of the jobs.
2. End to end: CPU per request of ``RequestServer.serve`` (mock backend in this process, JSON
   answers, job store on) with ``MeteredJobs`` as its observer and a GPU reading every
   ``READING_EVERY_S``, against the same server without an observer (or readings). The mock's
   CPU is in both figures, so the difference is the metering's cost.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import platform
import resource
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from app.devnet.mock_backend import MockBackend, MockBackendConfig
from app.engine.energy import EnergyMeter
from app.network.answer import FinalInfo, Headers, HttpRequest, QueryContext
from app.network.job_energy import MeteredJobs
from app.network.jobs import JobStore
from app.network.request_server import JobObserver, RequestServer

MODEL = "Qwen/Qwen3-8B"
METER_JOBS = 2000
REQUESTS = 2000
READING_EVERY_S = 0.25  # telemetry samples once a second; more often here, the runs are short
_PAYLOAD = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "b"}]}).encode()
_REQUEST = HttpRequest("POST", "/v1/chat/completions", "HTTP/1.1", (), _PAYLOAD)


class PerStretchMeter(EnergyMeter):
    """The previous split: for every piece of a slice or tail, count the running jobs anew."""

    def _attribute(self, start: float, end: float, energy: Fraction) -> None:
        cuts = _cuts(self, start, end)
        duration = Fraction(end - start)
        for a, b in itertools.pairwise(cuts):
            active = [j for j in self._jobs.values() if _runs(j.started, j.ended, a, b)]
            for job in active:
                if job.ended is None:
                    job.energy_mj += energy * Fraction(b - a) / duration / len(active)
                    job.measured = True

    def _tail_share(self, start: float, end: float) -> Fraction:
        seconds = Fraction(0)
        for a, b in itertools.pairwise(_cuts(self, start, end)):
            running = sum(1 for j in self._jobs.values() if _runs(j.started, j.ended, a, b))
            seconds += Fraction(b - a) / max(1, running)
        return seconds


def _cuts(meter: EnergyMeter, start: float, end: float) -> list[float]:
    moments = {start, end}
    for job in meter._jobs.values():
        moments.update(m for m in (job.started, job.ended) if m is not None and start < m < end)
    return sorted(moments)


def _runs(started: float, ended: float | None, a: float, b: float) -> bool:
    return started <= a and (ended is None or ended >= b)


class SimClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def meter_cost_ms(cls: type[EnergyMeter], in_flight: int) -> float:
    """CPU ms per job with ``in_flight`` jobs running all the time."""
    clock = SimClock()
    meter = cls(clock=clock)
    energy = 0
    meter.add_reading("gpu0", 0.0, energy_mj=energy, power_mw=None)
    for n in range(in_flight):
        meter.job_started(f"j{n}")
    next_reading = 1.0
    started = time.process_time()
    for done in range(METER_JOBS):
        clock.now += 0.001
        meter.finish_job(f"j{done}")
        meter.job_started(f"j{done + in_flight}")
        if clock.now >= next_reading:
            energy += 250_000  # 250 W
            meter.add_reading("gpu0", clock.now, energy_mj=energy, power_mw=None)
            next_reading += 1.0
    return (time.process_time() - started) * 1000 / METER_JOBS


class NullSink:
    async def head(
        self,
        status: int,
        reason: str,
        headers: Headers,
        http_version: str = "HTTP/1.1",
        final: FinalInfo | None = None,
    ) -> None:
        pass

    async def part(self, data: bytes, final: FinalInfo | None = None) -> None:
        pass

    async def error(self, code: int, message: str, final: FinalInfo) -> None:
        raise RuntimeError(f"benchmark request failed: {code} {message}")


async def serve_cost_ms(backend: MockBackend, observer: JobObserver | None, lanes: int) -> float:
    """CPU ms per request (this process: server, mock backend, job store)."""
    with tempfile.TemporaryDirectory() as tmp:
        jobs = JobStore(Path(tmp) / "jobs.sqlite3")
        await jobs.start()
        server = RequestServer(
            backend.endpoint, model=MODEL, jobs=jobs, observer=observer, max_active_requests=lanes
        )
        counter = iter(range(REQUESTS))

        async def lane() -> None:
            for n in counter:
                await server.serve(
                    QueryContext(n.to_bytes(32, "big"), 1500, 60.0), _REQUEST, NullSink()
                )

        for n in range(20):  # warm-up: connections, caches
            await server.serve(QueryContext(bytes([n]) * 32, 1500, 60.0), _REQUEST, NullSink())
        before = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.gather(*(lane() for _ in range(lanes)))
        after = resource.getrusage(resource.RUSAGE_SELF)
        await server.aclose()
        await jobs.aclose()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu * 1000 / REQUESTS


async def _read_gpu(meter: EnergyMeter) -> None:
    """A 250 W GPU's energy counter, read as the telemetry service would."""
    started = time.monotonic()
    while True:
        now = time.monotonic()
        meter.add_reading("gpu0", now, energy_mj=int((now - started) * 250_000), power_mw=None)
        await asyncio.sleep(READING_EVERY_S)


async def end_to_end() -> None:
    backend = MockBackend(MockBackendConfig(mode="json", model=MODEL))
    await backend.start()
    try:
        for lanes in (8, 64):
            base = await serve_cost_ms(backend, None, lanes)
            meter = EnergyMeter()
            readings = asyncio.create_task(_read_gpu(meter))
            metered = await serve_cost_ms(backend, MeteredJobs(meter), lanes)
            readings.cancel()
            print(
                f"  {lanes:3d} in flight: with MeteredJobs {metered:.3f} CPU-ms/request, "
                f"without (baseline) {base:.3f}; ratio {metered / base:.2f}, "
                f"difference {metered - base:+.3f} ms"
            )
    finally:
        await backend.aclose()


def main() -> None:
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"meter alone, {METER_JOBS} jobs, CPU ms per job (start + finish):")
    for in_flight in (1, 8, 64, 200):
        sweep = meter_cost_ms(EnergyMeter, in_flight)
        stretch = meter_cost_ms(PerStretchMeter, in_flight)
        print(
            f"  {in_flight:3d} in flight: sweep {sweep:.3f}, per-stretch baseline {stretch:.3f}; "
            f"ratio sweep / baseline {sweep / stretch:.2f}"
        )
    print(f"RequestServer end to end, {REQUESTS} JSON requests, mock backend in this process:")
    asyncio.run(end_to_end())


if __name__ == "__main__":
    main()
