"""The honest earnings estimate: measured tokens/s × stated demand assumptions × the worker fee.

Money is integer nanotons throughout; only rates (tokens per second) are floats. Billing follows
the COCOON rule (docs/protocol.md §5.3):
``adjusted = floor(tokens × coefficient/1000 × multiplier/10000)`` and the worker earns
``adjusted × worker_fee_per_token``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.core.billing import COEFFICIENT_ONE, MULTIPLIER_ONE, adjust_tokens
from app.core.errors import UserFacingError
from app.core.money import Nanoton, format_ton
from app.engine.benchmark import BenchmarkResult

SECONDS_PER_DAY = 86_400

# How much of the day the worker is busy serving. Demand is the unknown: the network routes
# requests by model, price and load, so we show a range rather than pretend to know it.
DEFAULT_SCENARIOS: tuple[tuple[str, float], ...] = (
    ("quiet", 0.05),
    ("typical", 0.25),
    ("busy", 0.75),
)


class EstimateError(UserFacingError):
    """An input of the estimate is out of range."""


@dataclass(frozen=True, slots=True)
class ScenarioEstimate:
    """Earnings if the worker is busy ``busy_fraction`` of the time."""

    name: str
    busy_fraction: float
    billed_tokens_per_day: int
    nanotons_per_day: Nanoton

    @property
    def nanotons_per_hour(self) -> Nanoton:
        return Nanoton(self.nanotons_per_day // 24)


@dataclass(frozen=True, slots=True)
class EarningsEstimate:
    """Per-scenario earnings plus every assumption behind them, in plain sentences."""

    served_tokens_per_s: float
    worker_fee_per_token: Nanoton
    scenarios: tuple[ScenarioEstimate, ...]
    assumptions: tuple[str, ...]

    def scenario(self, name: str) -> ScenarioEstimate:
        for item in self.scenarios:
            if item.name == name:
                return item
        raise KeyError(name)


def estimate_earnings(
    result: BenchmarkResult,
    worker_fee_per_token: int,
    *,
    coefficient: int = COEFFICIENT_ONE,
    prompt_multiplier: int = MULTIPLIER_ONE,
    completion_multiplier: int = MULTIPLIER_ONE,
    scenarios: tuple[tuple[str, float], ...] = DEFAULT_SCENARIOS,
) -> EarningsEstimate:
    """Estimate daily earnings from a benchmark and the network's ``worker_fee_per_token``.

    While busy, the worker serves what the benchmark measured with all slots in use: its
    generated tokens and the prompt tokens of those requests, per second of wall time (prompt
    processing included). Both kinds are billed, each with its own multiplier.
    """
    _check(worker_fee_per_token, coefficient, scenarios)
    _check_multiplier("prompt_multiplier", prompt_multiplier)
    _check_multiplier("completion_multiplier", completion_multiplier)
    completion_per_s = result.batched.generation_tps.median
    prompt_per_s = result.batched.served_prompt_tps.median
    if completion_per_s <= 0:
        raise EstimateError("The benchmark measured no generated tokens; run it again.")
    estimates = []
    for name, busy in scenarios:
        completion = math.floor(completion_per_s * busy * SECONDS_PER_DAY)
        prompt = math.floor(prompt_per_s * busy * SECONDS_PER_DAY)
        billed = adjust_tokens(prompt, coefficient, prompt_multiplier) + adjust_tokens(
            completion, coefficient, completion_multiplier
        )
        estimates.append(
            ScenarioEstimate(name, busy, billed, Nanoton(billed * worker_fee_per_token))
        )
    return EarningsEstimate(
        served_tokens_per_s=completion_per_s + prompt_per_s,
        worker_fee_per_token=Nanoton(worker_fee_per_token),
        scenarios=tuple(estimates),
        assumptions=_assumptions(result, worker_fee_per_token, coefficient, scenarios),
    )


def _assumptions(
    result: BenchmarkResult,
    fee: int,
    coefficient: int,
    scenarios: tuple[tuple[str, float], ...],
) -> tuple[str, ...]:
    batched = result.batched
    return (
        f"Speed: {batched.generation_tps.median:.1f} generated and "
        f"{batched.served_prompt_tps.median:.1f} prompt tokens/s with {result.parallel} requests "
        f"at once (median of {batched.repeats} runs of {result.model} on {result.device}).",
        f"Requests look like the benchmark's: short prompts and answers of up to "
        f"{result.max_tokens} tokens; longer prompts pay more per second, longer answers less.",
        f"Pay: {format_ton(fee, trim=True)} TON per token (the network's worker fee) × your "
        f"price coefficient {coefficient / COEFFICIENT_ONE:g}.",
        "Demand is not known in advance: the scenarios assume the worker is busy "
        + ", ".join(f"{busy:.0%} of the time ({name})" for name, busy in scenarios)
        + ".",
        "Not included: electricity, network fees for cash-outs, time the worker is off or paused.",
    )


def _check(fee: int, coefficient: int, scenarios: tuple[tuple[str, float], ...]) -> None:
    if not _whole(fee):
        raise EstimateError("The worker fee must be a whole, non-negative number of nanotons.")
    if not _whole(coefficient):
        raise EstimateError("The price coefficient must be a whole, non-negative number.")
    if not scenarios or not all(
        math.isfinite(busy) and 0.0 <= busy <= 1.0 for _, busy in scenarios
    ):
        raise EstimateError("Each scenario's busy fraction must be between 0 and 1.")


def _check_multiplier(name: str, value: int) -> None:
    if not _whole(value):
        raise EstimateError(f"The {name} must be a whole, non-negative number.")


def _whole(value: object) -> bool:
    # Callers may pass values parsed from config or JSON: bool and float are refused, not coerced.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
