"""``EnergyMeter``'s split of slices and tails, against a brute-force reference on random jobs.

The meter splits with one sweep over the jobs' start and end moments; the reference below cuts
every slice at every moment and counts the running jobs in each piece, the obvious way.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.energy import MJ_PER_WH, EnergyMeter

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
