"""The earnings estimate: integer nanotons, the COCOON billing rule, stated assumptions."""

from __future__ import annotations

import math

import pytest

from app.engine.benchmark import BenchmarkKey, BenchmarkResult, ConcurrencyFigures, Spread
from app.engine.earnings import SECONDS_PER_DAY, EstimateError, estimate_earnings


def result(generation: float = 100.0, served_prompt: float = 120.0) -> BenchmarkResult:
    def figures(concurrency: int) -> ConcurrencyFigures:
        return ConcurrencyFigures(
            concurrency=concurrency,
            generation_tps=Spread(generation, generation * 0.9, generation * 1.1),
            served_prompt_tps=Spread(served_prompt, served_prompt, served_prompt),
            stream_tps=Spread(generation / concurrency, 1.0, generation),
            prompt_tps=Spread(1000.0, 900.0, 1100.0),
            ttft_ms=Spread(50.0, 40.0, 60.0),
            repeats=3,
        )

    return BenchmarkResult(
        key=BenchmarkKey("GPU-1", "550.1", "ab" * 32, "engine-1"),
        model="m",
        device="RTX 4090",
        parallel=8,
        single=figures(1),
        batched=figures(8),
        max_tokens=64,
        measured_at=0.0,
        elapsed_s=30.0,
        budget_exhausted=False,
    )


def test_typical_day_in_integer_nanotons() -> None:
    estimate = estimate_earnings(result(), worker_fee_per_token=2)
    completion = math.floor(100.0 * 0.25 * SECONDS_PER_DAY)
    prompt = math.floor(120.0 * 0.25 * SECONDS_PER_DAY)
    typical = estimate.scenario("typical")
    assert typical.billed_tokens_per_day == completion + prompt
    assert typical.nanotons_per_day == 2 * (completion + prompt)
    assert isinstance(typical.nanotons_per_day, int)
    assert typical.nanotons_per_hour == typical.nanotons_per_day // 24
    assert estimate.served_tokens_per_s == pytest.approx(220.0)


def test_scenarios_grow_with_demand() -> None:
    estimate = estimate_earnings(result(), worker_fee_per_token=1)
    days = [s.nanotons_per_day for s in estimate.scenarios]
    assert days == sorted(days)
    assert [s.name for s in estimate.scenarios] == ["quiet", "typical", "busy"]


def test_coefficient_and_multipliers_follow_the_billing_rule() -> None:
    answers_only = result(served_prompt=0.0)
    base = estimate_earnings(answers_only, 1, scenarios=(("all", 1.0),))
    tokens = base.scenarios[0].billed_tokens_per_day
    scaled = estimate_earnings(
        answers_only, 1, scenarios=(("all", 1.0),), coefficient=1500, completion_multiplier=5000
    )
    assert scaled.scenarios[0].billed_tokens_per_day == tokens * 1500 * 5000 // (1000 * 10000)
    prompts_free = estimate_earnings(result(), 1, scenarios=(("all", 1.0),), prompt_multiplier=0)
    assert prompts_free.scenarios[0].billed_tokens_per_day == tokens


def test_assumptions_are_stated() -> None:
    text = " ".join(estimate_earnings(result(), 3, coefficient=1200).assumptions)
    assert "100.0 generated and 120.0 prompt tokens/s" in text
    assert "0.000000003 TON per token" in text
    assert "1.2" in text
    assert "25% of the time (typical)" in text
    assert "electricity" in text


@pytest.mark.parametrize(
    ("fee", "kwargs"),
    [
        (-1, {}),
        (1.5, {}),
        (True, {}),
        (1, {"coefficient": -1}),
        (1, {"prompt_multiplier": -5}),
        (1, {"completion_multiplier": 2.5}),
        (1, {"scenarios": ()}),
        (1, {"scenarios": (("x", 1.5),)}),
        (1, {"scenarios": (("x", float("nan")),)}),
    ],
)
def test_bad_inputs_are_refused(fee: object, kwargs: dict[str, object]) -> None:
    with pytest.raises(EstimateError):
        estimate_earnings(result(), fee, **kwargs)  # type: ignore[arg-type]


def test_no_generated_tokens_is_an_error() -> None:
    with pytest.raises(EstimateError, match="no generated tokens"):
        estimate_earnings(result(generation=0.0), 1)
