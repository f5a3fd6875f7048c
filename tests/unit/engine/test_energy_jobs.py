"""``EnergyMeter``'s jobs: the split against a brute-force reference, bounded memory, earnings.

The meter splits with one sweep over the jobs' start and end moments; the reference below cuts
every slice at every moment and counts the running jobs in each piece, the obvious way.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.energy import MJ_PER_WH, EnergyError, EnergyMeter, EnergyTotals

READINGS = 8  # one a second, at 0..7; jobs start and end between them (never on one)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _moment(quarter: int) -> float:
    """An exact binary fraction that never falls on a whole second."""
    return quarter / 4 + 0.125


jobs_strategy = st.lists(
    st.tuples(st.integers(0, 4 * (READINGS - 1) - 1), st.integers(1, 12)),
    min_size=1,
    max_size=12,
)
steps_strategy = st.lists(st.integers(0, 10**6), min_size=READINGS - 1, max_size=READINGS - 1)


def _reference(jobs: list[tuple[float, float]], steps: list[int]) -> list[float | None]:
    """Wh per job: exact shares of each slice that ended before the job, then its tail.

    None for a job over before the second reading: no slice measured anything yet.
    """

    def running(a: float, b: float, before: float) -> int:
        return sum(1 for s, e in jobs if s <= a and e >= b and s < before)

    def shared(start: float, end: float, before: float) -> Fraction:
        cuts = sorted(
            {start, end} | {m for s, e in jobs for m in (s, e) if start < m < end and s < before}
        )
        return sum(
            (Fraction(b - a) / running(a, b, before) for a, b in itertools.pairwise(cuts)),
            Fraction(0),
        )

    result: list[float | None] = []
    for start, end in jobs:
        energy = Fraction(0)
        last = 0
        for i, step in enumerate(steps):
            if i + 1 >= end:
                break
            last = i + 1
            if start < i + 1:
                energy += step * shared(max(start, i), i + 1, before=i + 1)
        if last == 0:
            result.append(None)
            continue
        # The stretch after the newest reading, at that slice's power.
        energy += steps[last - 1] * shared(max(start, last), end, before=end)
        result.append(float(energy / MJ_PER_WH))
    return result


@settings(max_examples=60, deadline=None)
@given(raw_jobs=jobs_strategy, steps=steps_strategy)
def test_the_sweep_matches_the_brute_force_split(
    raw_jobs: list[tuple[int, int]], steps: list[int]
) -> None:
    jobs = [(_moment(q), _moment(q) + length / 4) for q, length in raw_jobs]
    clock = Clock()
    meter = EnergyMeter(clock=clock)
    events: list[tuple[float, int, str, int]] = [
        (float(t), 0, "reading", t) for t in range(READINGS)
    ]
    events += [(s, 1, "start", n) for n, (s, _) in enumerate(jobs)]
    events += [(e, 2, "end", n) for n, (_, e) in enumerate(jobs)]
    counter = 0
    got: dict[int, float | None] = {}
    for at, _, kind, n in sorted(events):
        clock.now = at
        if kind == "reading":
            counter += steps[n - 1] if n else 0
            meter.add_reading("g", at, energy_mj=counter, power_mw=None)
        elif kind == "start":
            meter.job_started(str(n))
        else:
            got[n] = meter.finish_job(str(n))

    expected = _reference(jobs, steps)
    for n, want in enumerate(expected):
        if want is None:
            assert got[n] is None
        else:
            assert got[n] == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_without_readings_finished_jobs_are_not_kept() -> None:
    clock = Clock()
    meter = EnergyMeter(clock=clock)
    meter.job_started("running")
    for n in range(100):
        meter.job_started(str(n))
        clock.now += 0.5
        assert meter.finish_job(str(n)) is None
    assert "running" in meter._jobs
    assert len(meter._jobs) <= 1 + 32  # pruned every 32 finishes


def test_when_readings_stop_finished_jobs_are_kept_for_a_while_only() -> None:
    clock = Clock()
    meter = EnergyMeter(clock=clock)
    meter.add_reading("g", 0, energy_mj=0, power_mw=None)
    meter.add_reading("g", 1, energy_mj=MJ_PER_WH, power_mw=None)  # then the GPU goes quiet
    for n in range(300):
        clock.now = 1 + n
        meter.job_started(str(n))
        clock.now += 0.5
        assert meter.finish_job(str(n)) is not None
    # Those that ended in the last two minutes (180.5 to 300.5), and those since the last prune.
    assert 121 <= len(meter._jobs) <= 121 + 32


def test_finishing_adds_the_earnings_in_one_update() -> None:
    meter = EnergyMeter()
    seen: list[EnergyTotals] = []
    meter.job_started("a")
    meter.totals.subscribe(seen.append)
    assert meter.finish_job("a", earned_nanotons=1500) is None
    assert len(seen) == 1
    assert (seen[0].money.earned_nanoton, seen[0].jobs_finished, seen[0].active_jobs) == (
        1500,
        1,
        0,
    )


def test_earnings_of_an_unknown_job_still_count() -> None:
    meter = EnergyMeter()
    with pytest.raises(EnergyError, match="not being metered"):
        meter.finish_job("never-started", earned_nanotons=700)
    assert meter.totals.value.money.earned_nanoton == 700


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_bad_earnings_are_refused_and_the_job_stays_metered(bad: int) -> None:
    meter = EnergyMeter()
    meter.job_started("a")
    with pytest.raises(EnergyError, match="whole, non-negative number of nanotons"):
        meter.finish_job("a", earned_nanotons=bad)
    assert meter.totals.value.active_jobs == 1
    assert meter.finish_job("a", earned_nanotons=5) is None
    assert meter.totals.value.money.earned_nanoton == 5
