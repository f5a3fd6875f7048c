"""``EnergyMeter``: GPU energy attributed to jobs (Wh per job), TON per kWh and net profit.

Pure and deterministic: it is fed energy-counter readings (or power readings where a GPU has no
counter) and job start/finish calls stamped by an injected clock; all money is integer nanotons.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction

from app.core.errors import UserFacingError
from app.core.money import MAX_NANOTONS, Nanoton
from app.core.observable import Observable
from app.engine.telemetry import TelemetrySnapshot

MJ_PER_WH = 3_600_000
MJ_PER_KWH = 1000 * MJ_PER_WH
# Finished jobs are kept (for the slices that straddle their end) at most this long.
_FINISHED_RETENTION_S = 120.0
# Pruning walks every job: on each reading, but only on every so many finishes.
_PRUNE_EVERY_FINISHED = 32


class EnergyError(UserFacingError):
    """A call to the energy meter that cannot be honoured (unknown job, negative price, …)."""


@dataclass(frozen=True, slots=True)
class Economics:
    """Money for an amount of energy: earnings per kWh, electricity cost and net profit."""

    energy_mj: int
    earned_nanoton: Nanoton
    cost_nanoton: Nanoton
    net_nanoton: Nanoton  # negative when electricity cost more than it earned
    # Earnings per kWh; None until some energy has been measured.
    nanoton_per_kwh: Nanoton | None

    @property
    def energy_wh(self) -> float:
        return self.energy_mj / MJ_PER_WH


def economics(energy_mj: int, earned_nanoton: int, price_nanoton_per_kwh: int) -> Economics:
    """Integer money for ``energy_mj`` of electricity at the user's price (halves round up)."""
    cost = (price_nanoton_per_kwh * energy_mj + MJ_PER_KWH // 2) // MJ_PER_KWH
    per_kwh = (earned_nanoton * MJ_PER_KWH + energy_mj // 2) // energy_mj if energy_mj > 0 else None
    return Economics(
        energy_mj=energy_mj,
        earned_nanoton=Nanoton(earned_nanoton),
        cost_nanoton=Nanoton(cost),
        net_nanoton=Nanoton(earned_nanoton - cost),
        nanoton_per_kwh=None if per_kwh is None else Nanoton(per_kwh),
    )


@dataclass(frozen=True, slots=True)
class EnergyTotals:
    """Since the meter started: all GPU energy measured, the part attributed to jobs, and money.

    Cost, profit and TON per kWh use all measured energy (idle included): that is what the
    electricity bill sees while the app runs.
    """

    measured_mj: int
    jobs_mj: int
    jobs_finished: int
    active_jobs: int
    price_nanoton_per_kwh: Nanoton
    money: Economics


@dataclass(slots=True)
class _Job:
    started: float
    ended: float | None = None
    energy_mj: Fraction = Fraction(0)
    # Whether any measured slice (or an estimate from one) covered the job: without one its
    # energy is unknown, not zero (no GPU, or it finished before the second reading).
    measured: bool = False


@dataclass(frozen=True, slots=True)
class _Reading:
    at: float
    energy_mj: int | None
    power_mw: int | None
    # Average power over the slice that ended here (mW), for estimating a job's unmeasured tail.
    slice_power_mw: Fraction | None


class EnergyMeter:
    """Splits each measured slice of GPU energy equally among the jobs active in it.

    Feed it with :meth:`feed` (a telemetry snapshot) or :meth:`add_reading`. A job's last
    moments, after the newest reading, are estimated from the latest average power; the next
    reading's real energy for that stretch then counts as measured but not as the job's.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        price_nanoton_per_kwh: int = 0,
    ) -> None:
        self._clock = clock
        self._price = _checked_price(price_nanoton_per_kwh)
        self._jobs: dict[str, _Job] = {}
        self._readings: dict[str, _Reading] = {}
        self._measured = Fraction(0)
        self._jobs_mj = Fraction(0)
        self._finished = 0
        self._active = 0  # kept, not counted: totals are published on every start and finish
        self._earned = 0
        self.totals: Observable[EnergyTotals] = Observable(self._totals())

    # -- jobs ---------------------------------------------------------------------------------
    def job_started(self, job_id: str) -> None:
        if not job_id:
            raise EnergyError("A job needs an id to be metered.")
        job = self._jobs.get(job_id)
        if job is not None and job.ended is None:
            raise EnergyError(f"Job {job_id!r} is already being metered.")
        self._jobs[job_id] = _Job(started=self._clock())
        self._active += 1
        self._publish()

    def job_finished(self, job_id: str) -> float:
        """End the job's metering and return the energy attributed to it, in Wh (0 if unknown)."""
        energy_wh = self.finish_job(job_id)
        return 0.0 if energy_wh is None else energy_wh

    def finish_job(self, job_id: str, *, earned_nanotons: int = 0) -> float | None:
        """End the job's metering; its energy in Wh, or None when no reading could measure it.

        ``earned_nanotons`` (what the job earned) is added as :meth:`record_earnings` would,
        in the same update of the totals; it is added even when ``job_id`` is unknown.
        """
        earned = _checked_earnings(earned_nanotons)
        job = self._jobs.get(job_id)
        if job is None or job.ended is not None:
            if earned:
                self.record_earnings(earned)
            raise EnergyError(f"Job {job_id!r} is not being metered.")
        self._earned += earned
        now = max(self._clock(), job.started)
        for reading in self._readings.values():
            if reading.slice_power_mw is None:
                continue
            job.measured = True  # the stretch after this reading is estimated from its power
            start = max(reading.at, job.started)
            if now > start:
                job.energy_mj += reading.slice_power_mw * self._tail_share(start, now)
        job.ended = now
        self._active -= 1
        self._jobs_mj += job.energy_mj
        self._finished += 1
        if self._finished % _PRUNE_EVERY_FINISHED == 0:
            self._prune()  # readings prune too; this bounds memory when they stop or never come
        self._publish()
        return float(job.energy_mj / MJ_PER_WH) if job.measured else None

    @property
    def active_jobs(self) -> int:
        return self._active

    # -- money --------------------------------------------------------------------------------
    def record_earnings(self, nanotons: int) -> None:
        """Add what the worker earned (nanotons), for TON per kWh and net profit."""
        self._earned += _checked_earnings(nanotons)
        self._publish()

    def set_price(self, nanoton_per_kwh: int) -> None:
        """The user's electricity price in nanotons per kWh (0: ignore electricity cost)."""
        self._price = _checked_price(nanoton_per_kwh)
        self._publish()

    def job_economics(self, energy_wh: float, earned_nanoton: int) -> Economics:
        """Money for one job of ``energy_wh`` that earned ``earned_nanoton``, at today's price."""
        if not math.isfinite(energy_wh) or energy_wh < 0:
            raise EnergyError(
                f"A job's energy must be a non-negative number of Wh, got {energy_wh!r}."
            )
        earned = _checked_earnings(earned_nanoton)
        return economics(round(energy_wh * MJ_PER_WH), earned, self._price)

    # -- readings -----------------------------------------------------------------------------
    def feed(self, snapshot: TelemetrySnapshot) -> None:
        """Take every fresh GPU sample of a telemetry snapshot (subscribe this to telemetry)."""
        for gpu in snapshot.gpus:
            sample = gpu.sample
            if gpu.status != "ok" or sample is None:
                continue
            key = gpu.uuid or f"index:{gpu.index}"
            last = self._readings.get(key)
            if last is not None and sample.taken_at <= last.at:
                continue  # the same sample again (a round where this GPU did not answer)
            self.add_reading(
                key, sample.taken_at, energy_mj=sample.energy_mj, power_mw=sample.power_mw
            )

    def add_reading(
        self, gpu: str, at: float, *, energy_mj: int | None, power_mw: int | None
    ) -> None:
        """One GPU's cumulative energy counter (mJ) and/or power draw (mW) at time ``at``."""
        if not math.isfinite(at):
            raise EnergyError("A reading needs a finite time.")
        if (energy_mj is not None and energy_mj < 0) or (power_mw is not None and power_mw < 0):
            raise EnergyError("Energy and power readings cannot be negative.")
        last = self._readings.get(gpu)
        if last is not None and at <= last.at:
            raise EnergyError(f"Readings of {gpu} must move forward in time.")
        slice_mj = None if last is None else _slice_energy(last, at, energy_mj, power_mw)
        slice_power = None
        if last is not None and slice_mj is not None:
            slice_power = slice_mj / Fraction(at - last.at)
            self._measured += slice_mj
            self._attribute(last.at, at, slice_mj)
        self._readings[gpu] = _Reading(at, energy_mj, power_mw, slice_power)
        self._prune()
        self._publish()

    def _attribute(self, start: float, end: float, energy: Fraction) -> None:
        """Split ``energy`` of [start, end] over the jobs active in each part of that slice."""
        edges, counts = _occupancy(self._jobs.values(), start, end)
        rate = energy / Fraction(end - start)
        # from_edge[i]: what one job running from edges[i] to the end of the slice receives.
        # Summed from the end once, so the split costs O(jobs log jobs), not jobs × stretches.
        from_edge = [Fraction(0)] * len(edges)
        for i in range(len(counts) - 1, -1, -1):
            share = rate * Fraction(edges[i + 1] - edges[i]) / counts[i] if counts[i] else 0
            from_edge[i] = from_edge[i + 1] + share  # idle stretches: measured, not attributed
        for job in self._jobs.values():
            # A finished job was already settled with its estimate.
            if job.ended is None and job.started < end:
                job.energy_mj += from_edge[bisect.bisect_left(edges, max(job.started, start))]
                job.measured = True

    def _tail_share(self, start: float, end: float) -> Fraction:
        """Seconds of [start, end] that belong to the job finishing now (still active here).

        Jobs that finished earlier in the stretch shared it until they ended, so their estimates
        and this one add up to the stretch once, not once per job.
        """
        edges, counts = _occupancy(self._jobs.values(), start, end)
        seconds = sum(
            (b - a) / max(1, n) for a, b, n in zip(edges[:-1], edges[1:], counts, strict=True)
        )
        return Fraction(seconds)

    def _prune(self) -> None:
        """Forget finished jobs that no slice or tail can reach any more.

        Runs on every reading and every few finishes: without the latter a machine whose GPU
        gives no readings (or stopped giving them) would keep every job it ever served.
        """
        now = self._clock()
        if self._readings:
            oldest = min(r.at for r in self._readings.values())
            newest = max(now, max(r.at for r in self._readings.values()))
        else:
            oldest = newest = math.inf  # no reading yet: the first slice starts after them all
        for job_id, job in list(self._jobs.items()):
            if job.ended is not None and (
                job.ended <= oldest or job.ended < newest - _FINISHED_RETENTION_S
            ):
                del self._jobs[job_id]

    def _totals(self) -> EnergyTotals:
        measured = int(self._measured)
        return EnergyTotals(
            measured_mj=measured,
            jobs_mj=int(self._jobs_mj),
            jobs_finished=self._finished,
            active_jobs=self.active_jobs,
            price_nanoton_per_kwh=self._price,
            money=economics(measured, self._earned, self._price),
        )

    def _publish(self) -> None:
        self.totals.set(self._totals())


def _occupancy(jobs: Iterable[_Job], start: float, end: float) -> tuple[list[float], list[int]]:
    """Where the number of running jobs changes inside [start, end], and that number between.

    Returns ``edges`` (start, the changes, end) and ``counts`` (one per stretch between two
    edges). A job runs on a stretch when it started at or before its beginning and had not
    ended before its end.
    """
    running = 0
    changes: dict[float, int] = {}
    for job in jobs:
        if job.started >= end or (job.ended is not None and job.ended <= start):
            continue
        if job.started <= start:
            running += 1
        else:
            changes[job.started] = changes.get(job.started, 0) + 1
        if job.ended is not None and job.ended < end:
            changes[job.ended] = changes.get(job.ended, 0) - 1
    edges, counts = [start], []
    for moment in sorted(changes):
        counts.append(running)
        edges.append(moment)
        running += changes[moment]
    counts.append(running)
    edges.append(end)
    return edges, counts


def _slice_energy(
    last: _Reading, at: float, energy_mj: int | None, power_mw: int | None
) -> Fraction | None:
    """Energy between two readings: the counter's difference, else power × time."""
    if last.energy_mj is not None and energy_mj is not None and energy_mj >= last.energy_mj:
        return Fraction(energy_mj - last.energy_mj)
    # No counter (older GPUs), or it went backwards (driver reloaded): integrate power instead.
    powers = [p for p in (last.power_mw, power_mw) if p is not None]
    if not powers:
        return None
    return Fraction(sum(powers), len(powers)) * Fraction(at - last.at)


def _checked_earnings(value: int) -> int:
    if type(value) is not int or value < 0:
        raise EnergyError(
            f"Earnings must be a whole, non-negative number of nanotons, got {value!r}."
        )
    return value


def _checked_price(value: int) -> Nanoton:
    if type(value) is not int:
        raise EnergyError("The electricity price must be a whole number of nanotons per kWh.")
    if value < 0:
        raise EnergyError("The electricity price cannot be negative.")
    if value > MAX_NANOTONS:
        raise EnergyError(
            "That electricity price is not realistic.",
            hint="Enter your price per kWh in TON, e.g. 0.05.",
        )
    return Nanoton(value)
