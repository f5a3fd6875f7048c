"""Billing math: the adjusted-token formula, costs and earnings, against the reference's numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.billing import (
    BillingParams,
    RawTokens,
    adjust_tokens,
    adjusted_tokens,
    usage_costs,
    worker_earnings,
)
from app.network.answer import TokensUsed
from app.network.root_config import parse_fake_ton_config
from tests.unit.network.traces import traces_dir


def _reference_adjust(count: int, coefficient: int, multiplier: int) -> int:
    """``Ton.h``'s ``adjust_tokens``: doubles, truncated toward zero."""
    return int(float(count) * (float(coefficient) * 0.001) * float(multiplier) * 0.0001)


@pytest.mark.parametrize(
    ("count", "coefficient", "multiplier", "expected"),
    [
        (23, 1500, 10_000, 34),  # the trace: (34 - 11) x 1.5
        (11, 1500, 10_000, 16),
        (90, 1500, 10_000, 135),
        (10, 1500, 10_000, 15),
        (3, 1000, 10_000, 3),
        (100, 1000, 5_000, 50),
        (7, 1000, 12_500, 8),  # 8.75 → 8
        (1, 999, 10_000, 0),
        (100, 0, 10_000, 0),  # the local-all launcher's coefficient bills nothing
        (100, 1000, 0, 0),
        (0, 1500, 10_000, 0),
        (-5, 1500, 10_000, 0),  # cached above prompt: the reference would bill negative
        (10**12, 1_000_000, 10**9, 2**63 - 1),  # clamped to a TL long
    ],
)
def test_adjust_tokens_table(count: int, coefficient: int, multiplier: int, expected: int) -> None:
    assert adjust_tokens(count, coefficient, multiplier) == expected


@given(
    count=st.integers(0, 2_000_000),
    coefficient=st.integers(0, 20_000),
    multiplier=st.integers(0, 50_000),
)
def test_adjust_tokens_matches_reference_doubles(
    count: int, coefficient: int, multiplier: int
) -> None:
    exact = adjust_tokens(count, coefficient, multiplier)
    reference = _reference_adjust(count, coefficient, multiplier)
    # Doubles can land a hair below an exact integer result; never anywhere else.
    assert reference in (exact, exact - 1)
    assert exact == count * coefficient * multiplier // 10_000_000


def test_trace_usage_at_coefficient_1500_bills_what_the_reference_billed() -> None:
    # client-responses.jsonl: usage {prompt 34, cached 11, completion 100, reasoning 10} at 1500
    # → tokensUsed 34/16/135/15 = 200; costs at price 2: 100, 300, 400.
    params = BillingParams(price_per_token=2, worker_fee_per_token=1)
    tokens = adjusted_tokens(RawTokens(34, 11, 100, 10), 1500, params)
    assert tokens == TokensUsed(34, 16, 135, 15, 200)
    assert usage_costs(tokens, params) == {
        "prompt_total_cost": 100,
        "completion_total_cost": 300,
        "total_cost": 400,
    }
    assert worker_earnings(tokens, params) == 200


def test_multipliers_apply_per_category() -> None:
    params = BillingParams(
        price_per_token=3,
        prompt_tokens_price_multiplier=20_000,
        cached_tokens_price_multiplier=2_500,
        completion_tokens_price_multiplier=10_000,
        reasoning_tokens_price_multiplier=15_000,
    )
    tokens = adjusted_tokens(
        RawTokens(prompt=100, cached=40, completion=50, reasoning=20), 1000, params
    )
    assert tokens == TokensUsed(120, 10, 30, 30, 190)
    assert usage_costs(tokens, params)["total_cost"] == 570


def test_reasoning_above_completion_bills_no_negative_completion() -> None:
    tokens = adjusted_tokens(
        RawTokens(prompt=5, cached=9, completion=3, reasoning=8), 1000, BillingParams()
    )
    assert tokens == TokensUsed(0, 9, 0, 8, 17)


@pytest.mark.parametrize("bad", [-1, True, 1.5, "2"])
def test_billing_params_reject_bad_values(bad: object) -> None:
    with pytest.raises(ValueError, match="price_per_token"):
        BillingParams(price_per_token=bad)  # type: ignore[arg-type]


def test_params_from_the_fake_ton_root_config() -> None:
    path = traces_dir() / "configs"
    config = parse_fake_ton_config((path / "fake-ton-config.json").read_text())
    params = BillingParams.from_root_config(config)
    assert params == BillingParams(price_per_token=2, worker_fee_per_token=1)
