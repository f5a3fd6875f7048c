"""Billing math: raw token counts → adjusted tokens (coefficient, multipliers) → nanoton costs.

The one place this arithmetic lives: the network's billing and the engine's earnings estimate
both use it.

Mirrors the reference's ``runners/helpers/CountTokens.cpp`` and ``Ton.h``, in exact integers.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

from app.core.money import Nanoton

# Multipliers are in 1/10000 (10000 = 1.0x); the coefficient is in 1/1000 (1000 = 1.0x).
MULTIPLIER_ONE = 10_000
COEFFICIENT_ONE = 1_000
_MAX_LONG = 2**63 - 1


@dataclass(frozen=True, slots=True)
class TokensUsed:
    """``tokensUsed``: adjusted tokens (coefficient and multipliers applied), the billing unit."""

    prompt_tokens_used: int = 0
    cached_tokens_used: int = 0
    completion_tokens_used: int = 0
    reasoning_tokens_used: int = 0
    total_tokens_used: int = 0


class PriceConfig(Protocol):
    """What billing needs from the root contract config (``root_config.RootConfig`` has it)."""

    @property
    def price_per_token(self) -> int: ...
    @property
    def worker_fee_per_token(self) -> int: ...
    @property
    def prompt_tokens_price_multiplier(self) -> int: ...
    @property
    def cached_tokens_price_multiplier(self) -> int: ...
    @property
    def completion_tokens_price_multiplier(self) -> int: ...
    @property
    def reasoning_tokens_price_multiplier(self) -> int: ...


@dataclass(frozen=True, slots=True)
class BillingParams:
    """Prices and per-category multipliers from the root contract config (docs/protocol.md §6.5).

    ``price_per_token`` is what the client pays per adjusted token and ``worker_fee_per_token``
    what the worker earns per adjusted token, both in nanotons. Fake TON uses 2 and 1.
    """

    price_per_token: int = 2
    worker_fee_per_token: int = 1
    prompt_tokens_price_multiplier: int = MULTIPLIER_ONE
    cached_tokens_price_multiplier: int = MULTIPLIER_ONE
    completion_tokens_price_multiplier: int = MULTIPLIER_ONE
    reasoning_tokens_price_multiplier: int = MULTIPLIER_ONE

    @classmethod
    def from_root_config(cls, config: PriceConfig) -> BillingParams:
        """The prices and multipliers of a loaded root contract config."""
        return cls(**{f.name: int(getattr(config, f.name)) for f in fields(cls)})

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"billing parameter {name} must be a non-negative integer")


@dataclass(frozen=True, slots=True)
class RawTokens:
    """Token counts as the backend's ``usage`` reports them (maxima over the answer)."""

    prompt: int = 0
    cached: int = 0
    completion: int = 0
    reasoning: int = 0


def adjust_tokens(count: int, coefficient: int, multiplier: int) -> int:
    """``floor(count x coefficient/1000 x multiplier/10000)``, clamped to ``[0, 2**63-1]``.

    The reference computes this in doubles and truncates; exact integers give the same result
    for every realistic count (checked in the tests) and never round 3 x 1.0 down to 2. Negative
    inputs (cached above prompt, say) bill 0 instead of the reference's negative numbers.
    """
    if count <= 0 or coefficient <= 0 or multiplier <= 0:
        return 0
    return min(count * coefficient * multiplier // (COEFFICIENT_ONE * MULTIPLIER_ONE), _MAX_LONG)


def adjusted_tokens(raw: RawTokens, coefficient: int, params: BillingParams) -> TokensUsed:
    """The ``tokensUsed`` numbers; cached is taken out of prompt, reasoning out of completion."""
    prompt = adjust_tokens(
        raw.prompt - raw.cached, coefficient, params.prompt_tokens_price_multiplier
    )
    cached = adjust_tokens(raw.cached, coefficient, params.cached_tokens_price_multiplier)
    completion = adjust_tokens(
        raw.completion - raw.reasoning, coefficient, params.completion_tokens_price_multiplier
    )
    reasoning = adjust_tokens(raw.reasoning, coefficient, params.reasoning_tokens_price_multiplier)
    total = min(prompt + cached + completion + reasoning, _MAX_LONG)
    return TokensUsed(prompt, cached, completion, reasoning, total)


def usage_costs(tokens: TokensUsed, params: BillingParams) -> dict[str, int]:
    """The cost fields injected into the client's ``usage`` object (nanotons, client price)."""
    price = params.price_per_token
    return {
        "prompt_total_cost": (tokens.prompt_tokens_used + tokens.cached_tokens_used) * price,
        "completion_total_cost": (tokens.completion_tokens_used + tokens.reasoning_tokens_used)
        * price,
        "total_cost": tokens.total_tokens_used * price,
    }


def worker_earnings(tokens: TokensUsed, params: BillingParams) -> Nanoton:
    """What the worker earns for these adjusted tokens (before the proxy anchors them on-chain)."""
    return Nanoton(tokens.total_tokens_used * params.worker_fee_per_token)
