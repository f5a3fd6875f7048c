"""``EnergyMeter``: energy per job from counter readings, overlapping jobs, money in nanotons."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.money import parse_ton
from app.engine.energy import MJ_PER_KWH, MJ_PER_WH, EnergyError, EnergyMeter, economics
from app.engine.telemetry import GpuTelemetry
from tests.fakes.fake_pynvml import FakeNvml

WH = MJ_PER_WH  # 1 Wh in mJ: readings below step by whole Wh to keep the arithmetic readable


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def meter(clock: Clock) -> EnergyMeter:
    return EnergyMeter(clock=clock)


def _read(meter: EnergyMeter, clock: Clock, at: float, wh: float, gpu: str = "gpu0") -> None:
    clock.now = at
    meter.add_reading(gpu, at, energy_mj=round(wh * WH), power_mw=None)


def test_one_job_gets_the_energy_measured_while_it_ran(meter: EnergyMeter, clock: Clock) -> None:
    _read(meter, clock, 0, 0)
    meter.job_started("a")
    _read(meter, clock, 1, 2)
    _read(meter, clock, 2, 4)

    assert meter.job_finished("a") == 4.0
    totals = meter.totals.value
    assert totals.measured_mj == 4 * WH
    assert totals.jobs_mj == 4 * WH
    assert totals.jobs_finished == 1
    assert totals.active_jobs == 0


def test_overlapping_jobs_split_each_slice_equally(meter: EnergyMeter, clock: Clock) -> None:
    _read(meter, clock, 0, 0)
    meter.job_started("a")
    _read(meter, clock, 1, 1)  # a alone: 1 Wh
    meter.job_started("b")
    _read(meter, clock, 2, 2)  # a and b: 0.5 Wh each
    a = meter.job_finished("a")
    _read(meter, clock, 3, 3)  # b alone: 1 Wh
    b = meter.job_finished("b")

    assert (a, b) == (1.5, 1.5)
    assert meter.totals.value.jobs_mj == 3 * WH


def test_jobs_starting_inside_a_slice_get_their_part(meter: EnergyMeter, clock: Clock) -> None:
    _read(meter, clock, 0, 0)
    clock.now = 0.25
    meter.job_started("a")
    clock.now = 0.5
    meter.job_started("b")
    _read(meter, clock, 1, 4)  # 4 Wh over 1 s: 1 Wh per quarter second

    assert meter.job_finished("a") == 2.0  # alone on [0.25, 0.5], then half of [0.5, 1]
    assert meter.job_finished("b") == 1.0
    assert meter.totals.value.measured_mj == 4 * WH
    assert meter.totals.value.jobs_mj == 3 * WH  # [0, 0.25] was idle


def test_idle_energy_is_measured_but_belongs_to_no_job(meter: EnergyMeter, clock: Clock) -> None:
    _read(meter, clock, 0, 0)
    _read(meter, clock, 1, 5)
    meter.job_started("a")
    _read(meter, clock, 2, 6)
    meter.job_finished("a")

    assert meter.totals.value.measured_mj == 6 * WH
    assert meter.totals.value.jobs_mj == 1 * WH


def test_the_tail_after_the_last_reading_is_estimated(meter: EnergyMeter, clock: Clock) -> None:
    _read(meter, clock, 0, 0)
    meter.job_started("a")
    meter.job_started("b")
    _read(meter, clock, 1, 2)  # 2 Wh per second; 1 Wh each
    clock.now = 1.5

    a = meter.job_finished("a")  # + half a second at 2 Wh/s shared by two jobs = 0.5 Wh

    assert a == pytest.approx(1.5)
    _read(meter, clock, 2, 3)  # the real slice: 1 Wh; b had half of [1, 1.5] and all of [1.5, 2]
    assert meter.job_finished("b") == pytest.approx(1 + 0.25 + 0.5)
    assert meter.totals.value.measured_mj == 3 * WH


def test_a_job_shorter_than_a_sampling_interval(meter: EnergyMeter, clock: Clock) -> None:
    _read(meter, clock, 0, 0)
    _read(meter, clock, 1, 3)  # 3 Wh per second
    clock.now = 1.2
    meter.job_started("short")
    clock.now = 1.6

    assert meter.job_finished("short") == pytest.approx(1.2)


def test_a_job_before_any_reading_gets_nothing(meter: EnergyMeter, clock: Clock) -> None:
    meter.job_started("a")
    clock.now = 5

    assert meter.job_finished("a") == 0.0


def test_without_a_counter_power_is_integrated(meter: EnergyMeter, clock: Clock) -> None:
    meter.add_reading("old-gpu", 0, energy_mj=None, power_mw=100_000)
    meter.job_started("a")
    clock.now = 2
    meter.add_reading("old-gpu", 2, energy_mj=None, power_mw=200_000)

    # trapezoid: 150 W for 2 s = 300 J
    assert meter.job_finished("a") == pytest.approx(300_000 / WH)


def test_a_counter_reset_falls_back_to_power(meter: EnergyMeter, clock: Clock) -> None:
    meter.add_reading("g", 0, energy_mj=9 * WH, power_mw=360_000)
    meter.job_started("a")
    clock.now = 10
    meter.add_reading("g", 10, energy_mj=5, power_mw=360_000)  # the driver reloaded

    assert meter.job_finished("a") == pytest.approx(1.0)  # 360 W × 10 s = 1 Wh
    assert meter.totals.value.measured_mj == WH


def test_a_slice_with_nothing_known_is_skipped(meter: EnergyMeter, clock: Clock) -> None:
    meter.add_reading("g", 0, energy_mj=None, power_mw=None)
    meter.add_reading("g", 1, energy_mj=None, power_mw=None)

    assert meter.totals.value.measured_mj == 0
    assert meter.totals.value.money.nanoton_per_kwh is None


def test_energy_of_several_gpus_adds_up(meter: EnergyMeter, clock: Clock) -> None:
    _read(meter, clock, 0, 0, gpu="g0")
    _read(meter, clock, 0, 100, gpu="g1")
    meter.job_started("a")
    _read(meter, clock, 1, 1, gpu="g0")
    _read(meter, clock, 1, 102, gpu="g1")

    assert meter.job_finished("a") == 3.0


async def test_feeding_telemetry_snapshots(clock: Clock) -> None:
    fake = FakeNvml(1)
    fake.gpus[0].energy_step_mj = 2 * WH
    telemetry = GpuTelemetry(fake.module, clock=clock)
    meter = EnergyMeter(clock=clock)
    telemetry.snapshot.subscribe(meter.feed)

    await telemetry.sample_once()
    meter.job_started("a")
    for second in (1, 2, 3):
        clock.now = second
        await telemetry.sample_once()
    meter.feed(telemetry.snapshot.value)  # the same snapshot twice is ignored

    assert meter.job_finished("a") == 6.0
    assert meter.totals.value.measured_mj == 6 * WH
    await telemetry.aclose()


def test_money_is_integer_nanotons(meter: EnergyMeter, clock: Clock) -> None:
    meter.set_price(parse_ton("0.05"))  # per kWh
    _read(meter, clock, 0, 0)
    _read(meter, clock, 3600, 1000)  # 1 kWh
    meter.record_earnings(parse_ton("0.2"))

    money = meter.totals.value.money
    assert money.energy_wh == 1000.0
    assert money.cost_nanoton == 50_000_000
    assert money.earned_nanoton == 200_000_000
    assert money.net_nanoton == 150_000_000
    assert money.nanoton_per_kwh == 200_000_000
    assert all(
        type(v) is int
        for v in (money.cost_nanoton, money.net_nanoton, money.nanoton_per_kwh, money.energy_mj)
    )
    assert meter.totals.value.price_nanoton_per_kwh == 50_000_000


def test_net_profit_can_be_negative() -> None:
    money = economics(2 * MJ_PER_KWH, 10, 1_000_000_000)

    assert money.cost_nanoton == 2_000_000_000
    assert money.net_nanoton == 10 - 2_000_000_000
    assert money.nanoton_per_kwh == 5


def test_money_rounds_halves_up() -> None:
    assert economics(MJ_PER_KWH // 2, 0, 1).cost_nanoton == 1  # 0.5 nanoton
    assert economics(MJ_PER_KWH // 2 - 1, 0, 1).cost_nanoton == 0
    assert economics(0, 7, 100).nanoton_per_kwh is None


def test_per_job_economics(meter: EnergyMeter) -> None:
    meter.set_price(100_000_000)

    money = meter.job_economics(2.5, earned_nanoton=1_000_000)

    assert money.energy_mj == 9_000_000
    assert money.cost_nanoton == 250_000
    assert money.net_nanoton == 750_000
    assert money.nanoton_per_kwh == 400_000_000


@pytest.mark.parametrize(
    ("action", "words"),
    [
        (lambda m: m.job_started(""), "needs an id"),
        (lambda m: m.job_finished("nope"), "not being metered"),
        (lambda m: m.set_price(-1), "cannot be negative"),
        (lambda m: m.set_price(0.05), "whole number"),
        (lambda m: m.set_price(True), "whole number"),
        (lambda m: m.set_price(10**30), "not realistic"),
        (lambda m: m.record_earnings(-5), "non-negative"),
        (lambda m: m.record_earnings(1.5), "non-negative"),
        (lambda m: m.job_economics(float("nan"), 0), "non-negative"),
        (lambda m: m.job_economics(-1.0, 0), "non-negative"),
        (lambda m: m.job_economics(1.0, -3), "non-negative"),
        (lambda m: m.add_reading("g", float("inf"), energy_mj=1, power_mw=None), "finite"),
        (lambda m: m.add_reading("g", 5, energy_mj=-1, power_mw=None), "negative"),
        (lambda m: m.add_reading("g", 5, energy_mj=None, power_mw=-1), "negative"),
        (lambda m: m.add_reading("g0", 0.5, energy_mj=9, power_mw=None), "forward in time"),
    ],
)
def test_bad_input_gets_a_clear_error_and_loses_nothing(
    meter: EnergyMeter, clock: Clock, action: Callable[[EnergyMeter], object], words: str
) -> None:
    meter.set_price(7)
    _read(meter, clock, 0, 0, gpu="g0")
    meter.job_started("a")
    _read(meter, clock, 1, 1, gpu="g0")
    meter.record_earnings(11)
    before = meter.totals.value

    with pytest.raises(EnergyError, match=words):
        action(meter)

    assert meter.totals.value == before
    assert meter.job_finished("a") == 1.0


def test_a_job_cannot_start_twice_or_finish_twice(meter: EnergyMeter) -> None:
    meter.job_started("a")
    with pytest.raises(EnergyError, match="already being metered"):
        meter.job_started("a")
    meter.job_finished("a")
    with pytest.raises(EnergyError, match="not being metered"):
        meter.job_finished("a")
    meter.job_started("a")  # the id may be reused once the job is over
    assert meter.active_jobs == 1


def test_a_negative_price_is_refused_at_construction() -> None:
    with pytest.raises(EnergyError):
        EnergyMeter(price_nanoton_per_kwh=-1)


def test_finished_jobs_are_forgotten_once_no_slice_can_reach_them(
    meter: EnergyMeter, clock: Clock
) -> None:
    _read(meter, clock, 0, 0)
    for n in range(50):
        meter.job_started(f"j{n}")
        clock.now += 0.1
        meter.job_finished(f"j{n}")
    _read(meter, clock, 10, 1)

    assert meter._jobs == {}


@given(
    steps=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30),
    jobs=st.integers(min_value=1, max_value=7),
)
def test_jobs_running_throughout_share_everything_equally(steps: list[int], jobs: int) -> None:
    clock = Clock()
    meter = EnergyMeter(clock=clock)
    meter.add_reading("g", 0, energy_mj=0, power_mw=None)
    for n in range(jobs):
        meter.job_started(str(n))
    counter = 0
    for second, step in enumerate(steps, start=1):
        counter += step
        clock.now = second
        meter.add_reading("g", second, energy_mj=counter, power_mw=None)

    shares = [meter.job_finished(str(n)) for n in range(jobs)]

    assert all(s == float(Fraction(counter, jobs) / MJ_PER_WH) for s in shares)
    assert meter.totals.value.measured_mj == counter
