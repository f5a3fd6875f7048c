"""RequestServer's job observer: started/finished in pairs for every outcome, Wh in the record.

The backend is the mock on loopback; the energy meter is the real one, fed by the real telemetry
service over the fake NVML module (the GPU is the one boundary this machine cannot reach).
"""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from app.core.money import Nanoton
from app.devnet.mock_backend import MockBackend, MockBackendConfig
from app.engine.endpoint import BackendEndpoint
from app.engine.energy import MJ_PER_WH, EnergyMeter
from app.engine.telemetry import GpuTelemetry
from app.network.answer import FinalInfo
from app.network.job_energy import MeteredJobs
from app.network.jobs import JobRecord, JobStore
from app.network.request_server import JobObserver, RequestServer
from tests.fakes.fake_pynvml import FakeNvml
from tests.unit.network.test_request_server import MODEL, RecordingSink, chat, query


class RecordingObserver:
    """Remembers every call; ``job_finished`` answers ``energy_wh`` (or raises ``fail``)."""

    def __init__(self, energy_wh: float | None = 1.25) -> None:
        self.energy_wh = energy_wh
        self.events: list[tuple[str, str, int | None]] = []
        self.fail_start: Exception | None = None
        self.fail_finish: Exception | None = None

    def job_started(self, job_key: str, /) -> None:
        self.events.append(("started", job_key, None))
        if self.fail_start is not None:
            raise self.fail_start

    def job_finished(self, job_key: str, earned_nanotons: Nanoton, /) -> float | None:
        self.events.append(("finished", job_key, earned_nanotons))
        if self.fail_finish is not None:
            raise self.fail_finish
        return self.energy_wh

    def assert_paired(self, jobs: int) -> None:
        """Each key started once, then finished once; none is left open."""
        started = [key for kind, key, _ in self.events if kind == "started"]
        finished = [key for kind, key, _ in self.events if kind == "finished"]
        assert len(started) == len(set(started)) == jobs
        assert sorted(finished) == sorted(started)
        for key in started:
            kinds = [kind for kind, k, _ in self.events if k == key]
            assert kinds == ["started", "finished"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FailingSink(RecordingSink):
    """A sink with a bug: its first part raises."""

    async def part(self, data: bytes, final: FinalInfo | None = None) -> None:
        raise RuntimeError("sink bug")


def _server(
    endpoint: BackendEndpoint,
    observer: JobObserver,
    jobs: JobStore | None = None,
    *,
    max_active_requests: int = 8,
) -> RequestServer:
    return RequestServer(
        endpoint,
        model=MODEL,
        observer=observer,
        jobs=jobs,
        max_active_requests=max_active_requests,
    )


async def test_an_answered_job_is_observed_and_its_energy_stored(
    mock: MockBackend, store: JobStore
) -> None:
    observer = RecordingObserver(energy_wh=2.5)
    server = _server(mock.endpoint, observer, store)
    record = await server.serve(query(), chat(stream=True), RecordingSink())
    await server.aclose()
    observer.assert_paired(1)
    assert observer.events[-1][2] == record.earned_nanotons > 0
    assert (record.status, record.energy_wh) == ("ok", 2.5)
    await store.flush()
    assert [job.energy_wh for job in await store.recent()] == [2.5]
    (today,) = await store.totals_by_day(1)
    assert today.energy_wh == 2.5
    exported = json.loads(await store.export_json())
    assert exported["jobs"][0]["energy_wh"] == 2.5
    assert exported["totals_by_day"][0]["energy_wh"] == 2.5


async def test_refused_and_rejected_jobs_are_observed_in_pairs(mock: MockBackend) -> None:
    mock.config = MockBackendConfig(mode="hang_body")
    observer = RecordingObserver(energy_wh=0.0)
    server = _server(mock.endpoint, observer, max_active_requests=1)
    first_sink = RecordingSink()
    first = asyncio.create_task(server.serve(query(1, timeout=30.0), chat(), first_sink))
    await first_sink.first_part.wait()
    busy = await server.serve(query(2), chat(), RecordingSink())
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    rejected = await server.serve(query(3), chat(foo_bar=1), RecordingSink())
    await server.aclose()
    stopping = await server.serve(query(4), chat(), RecordingSink())
    assert (busy.status, rejected.status, stopping.status) == ("busy", "rejected", "busy")
    assert busy.energy_wh == rejected.energy_wh == 0.0
    observer.assert_paired(4)
    assert server.status.value.active == 0


async def test_a_cancelled_job_is_finished_for_the_observer(mock: MockBackend) -> None:
    mock.config = MockBackendConfig(mode="hang")
    observer = RecordingObserver()
    server = _server(mock.endpoint, observer)
    started = asyncio.Event()
    server.status.subscribe(lambda status: started.set() if status.active else None)
    task = asyncio.create_task(server.serve(query(timeout=30.0), chat(), RecordingSink()))
    await started.wait()
    assert [kind for kind, _, _ in observer.events] == ["started"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await server.aclose()
    observer.assert_paired(1)
    assert observer.events[-1][2] == 0  # nothing billed


@pytest.mark.allow_log_warnings
async def test_failed_and_timed_out_jobs_are_observed_in_pairs(mock: MockBackend) -> None:
    observer = RecordingObserver(energy_wh=0.5)
    down = _server(BackendEndpoint(base_url="http://127.0.0.1:9"), observer)
    failed = await down.serve(query(1), chat(), RecordingSink())
    await down.aclose()
    mock.config = MockBackendConfig(mode="hang")
    slow = _server(mock.endpoint, observer)
    timed_out = await slow.serve(query(2, timeout=0.2), chat(), RecordingSink())
    await slow.aclose()
    assert (failed.status, timed_out.status) == ("failed", "timeout")
    assert failed.energy_wh == timed_out.energy_wh == 0.5
    observer.assert_paired(2)


@pytest.mark.allow_log_warnings
async def test_a_sink_bug_is_recorded_as_failed_and_still_paired(mock: MockBackend) -> None:
    observer = RecordingObserver()
    server = _server(mock.endpoint, observer)
    with pytest.raises(RuntimeError, match="sink bug"):
        await server.serve(query(), chat(stream=True), FailingSink())
    await server.aclose()
    observer.assert_paired(1)
    status = server.status.value
    assert (status.active, status.failed, status.last_error) == (0, 1, "worker: internal error")


@pytest.mark.allow_log_warnings
async def test_an_observer_that_fails_to_start_costs_only_the_figure(
    mock: MockBackend, caplog: pytest.LogCaptureFixture
) -> None:
    observer = RecordingObserver()
    observer.fail_start = RuntimeError("meter broken")
    server = _server(mock.endpoint, observer)
    record = await server.serve(query(), chat(), RecordingSink())
    await server.aclose()
    assert (record.status, record.energy_wh) == ("ok", None)
    assert [kind for kind, _, _ in observer.events] == ["started"]  # never finished: not started
    assert "energy metering did not start: meter broken" in caplog.text


@pytest.mark.allow_log_warnings
async def test_an_observer_that_fails_to_finish_costs_only_the_figure(
    mock: MockBackend, caplog: pytest.LogCaptureFixture
) -> None:
    observer = RecordingObserver()
    observer.fail_finish = RuntimeError("meter broken")
    server = _server(mock.endpoint, observer)
    record = await server.serve(query(), chat(), RecordingSink())
    await server.aclose()
    assert (record.status, record.energy_wh) == ("ok", None)
    observer.assert_paired(1)
    assert "energy metering did not finish: meter broken" in caplog.text


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, None])
async def test_an_unusable_energy_figure_is_stored_as_unknown(
    mock: MockBackend, bad: float | None
) -> None:
    server = _server(mock.endpoint, RecordingObserver(energy_wh=bad))
    record = await server.serve(query(), chat(), RecordingSink())
    await server.aclose()
    assert record.energy_wh is None


async def test_repeated_request_ids_get_distinct_keys(mock: MockBackend) -> None:
    observer = RecordingObserver()
    server = _server(mock.endpoint, observer)
    await asyncio.gather(*(server.serve(query(7), chat(), RecordingSink()) for _ in range(3)))
    await server.aclose()
    observer.assert_paired(3)


async def _serve_while_sampling(
    server: RequestServer,
    telemetry: GpuTelemetry,
    clock: Clock,
    n: int,
    readings_at: tuple[float, ...],
    finish_at: float,
) -> JobRecord:
    """Serve query ``n`` held at its first part while telemetry samples at ``readings_at``."""
    sink = RecordingSink(gate=asyncio.Event())
    task = asyncio.create_task(server.serve(query(n), chat(stream=True), sink))
    await sink.first_part.wait()
    for at in readings_at:
        clock.now = at
        await telemetry.sample_once()
    clock.now = finish_at
    assert sink.gate is not None
    sink.gate.set()
    return await task


async def test_the_meter_puts_measured_wh_into_the_job_record(
    mock: MockBackend, store: JobStore
) -> None:
    clock = Clock()
    fake = FakeNvml(1)
    fake.gpus[0].energy_step_mj = 2 * MJ_PER_WH  # 2 Wh between two samples, one a second
    telemetry = GpuTelemetry(fake.module, clock=clock)
    meter = EnergyMeter(clock=clock, price_nanoton_per_kwh=0)
    unsubscribe = telemetry.snapshot.subscribe(meter.feed)
    server = _server(mock.endpoint, MeteredJobs(meter), store)
    await telemetry.sample_once()  # t = 0: the first reading; the job starts now

    record = await _serve_while_sampling(server, telemetry, clock, 1, (1.0, 2.0), finish_at=2.0)

    assert record.status == "ok"
    assert record.energy_wh == pytest.approx(4.0)  # both slices, all its own
    await store.flush()
    (stored,) = await store.recent()
    assert stored.energy_wh == pytest.approx(4.0)
    totals = meter.totals.value
    assert (totals.jobs_finished, totals.active_jobs) == (1, 0)
    assert totals.money.earned_nanoton == record.earned_nanotons
    unsubscribe()
    await server.aclose()
    await telemetry.aclose()


async def test_overlapping_jobs_share_the_energy_and_the_tail_is_estimated(
    mock: MockBackend, store: JobStore
) -> None:
    clock = Clock()
    fake = FakeNvml(1)
    fake.gpus[0].energy_step_mj = 2 * MJ_PER_WH
    telemetry = GpuTelemetry(fake.module, clock=clock)
    meter = EnergyMeter(clock=clock)
    unsubscribe = telemetry.snapshot.subscribe(meter.feed)
    server = _server(mock.endpoint, MeteredJobs(meter), store)
    await telemetry.sample_once()  # t = 0
    first_sink = RecordingSink(gate=asyncio.Event())
    first = asyncio.create_task(server.serve(query(1), chat(stream=True), first_sink))
    await first_sink.first_part.wait()
    clock.now = 1.0
    await telemetry.sample_once()  # [0, 1]: 2 Wh, the first job's alone
    # The second job runs over [1, 2.5]; a reading at 2 closes the shared slice [1, 2].
    second = await _serve_while_sampling(server, telemetry, clock, 2, (2.0,), finish_at=2.5)
    assert first_sink.gate is not None
    first_sink.gate.set()
    first_record = await first

    # second: half of [1, 2] (1 Wh) + 0.5 s estimated at 2 Wh/s shared by two jobs (0.5 Wh)
    assert second.energy_wh == pytest.approx(1.5)
    # first: [0, 1] alone (2 Wh) + half of [1, 2] (1 Wh) + its 0.5 s tail, shared all along (0.5)
    assert first_record.energy_wh == pytest.approx(3.5)
    await store.flush()
    (today,) = await store.totals_by_day(1)
    assert today.energy_wh == pytest.approx(5.0)
    unsubscribe()
    await server.aclose()
    await telemetry.aclose()


async def test_without_any_gpu_reading_the_energy_is_unknown(
    mock: MockBackend, store: JobStore
) -> None:
    meter = EnergyMeter()
    server = _server(mock.endpoint, MeteredJobs(meter), store)
    record = await server.serve(query(), chat(), RecordingSink())
    await server.aclose()
    assert record.energy_wh is None
    assert meter.totals.value.money.earned_nanoton == record.earned_nanotons
    await store.flush()
    (today,) = await store.totals_by_day(1)
    assert today.energy_wh is None
    exported = json.loads(await store.export_json())
    assert exported["jobs"][0]["energy_wh"] is None
