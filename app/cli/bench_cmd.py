"""`cocoon-provider bench`: measure this computer's inference speed and what it could earn."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO

from app.cli.context import CliContext, CliUsageError
from app.core.billing import BillingParams
from app.core.money import format_ton
from app.engine.benchmark import BenchmarkPlan, Spread
from app.engine.benchmark_runner import BenchmarkOutcome, BenchmarkRunner
from app.engine.earnings import EarningsEstimate, estimate_earnings

MAX_BUDGET_S = 3600.0
MIN_BUDGET_S = 10.0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "bench",
        help="measure tokens/s of the inference engine on this computer",
        description="Start the inference engine on the selected model, measure prompt and "
        "generation speed alone and with all slots busy, and cache the result.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.add_argument("--model", default="", help="catalog model name (default: from settings)")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="hard time limit in seconds, engine start included (default: 60)",
    )
    parser.add_argument("--no-cache", action="store_true", help="measure even if a result exists")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each round (1-20)")
    parser.add_argument(
        "--max-tokens", type=int, default=64, help="tokens generated per request (8-1024)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    if not MIN_BUDGET_S <= args.budget <= MAX_BUDGET_S:
        raise CliUsageError(
            f"--budget must be between {MIN_BUDGET_S:.0f} and {MAX_BUDGET_S:.0f} seconds."
        )
    if not 1 <= args.repeats <= 20:
        raise CliUsageError("--repeats must be between 1 and 20.")
    if not 8 <= args.max_tokens <= 1024:
        raise CliUsageError("--max-tokens must be between 8 and 1024.")
    engine = ctx.settings.current.value.engine
    runner = BenchmarkRunner(ctx.paths)
    outcome = asyncio.run(
        runner.run(
            model_name=args.model or engine.model,
            gpu_indices=engine.gpu_indices,
            context_override=engine.context_length,
            plan=BenchmarkPlan(
                budget_s=args.budget, repeats=args.repeats, max_tokens=args.max_tokens
            ),
            use_cache=not args.no_cache,
            progress=lambda line: print(f"bench: {line}", file=sys.stderr, flush=True),
        )
    )
    estimate = estimate_earnings(
        outcome.result,
        BillingParams().worker_fee_per_token,
        coefficient=ctx.settings.current.value.worker.coefficient,
    )
    if args.json:
        print(json.dumps(outcome_json(outcome, estimate, ctx.network), sort_keys=True))
    else:
        print_report(outcome, sys.stdout)
        print_estimate(estimate, ctx.network, sys.stdout)
    return 0


def outcome_json(
    outcome: BenchmarkOutcome, estimate: EarningsEstimate | None = None, network: str = ""
) -> dict[str, Any]:
    data: dict[str, Any] = {"from_cache": outcome.from_cache, "result": outcome.result.to_json()}
    if estimate is not None:
        data["estimate"] = {
            "prices": PRICES_NOTE.get(network, PRICES_NOTE["other"]),
            "worker_fee_per_token_nanotons": estimate.worker_fee_per_token,
            "served_tokens_per_s": estimate.served_tokens_per_s,
            "scenarios": [
                {
                    "name": item.name,
                    "busy_fraction": item.busy_fraction,
                    "billed_tokens_per_day": item.billed_tokens_per_day,
                    "nanotons_per_day": item.nanotons_per_day,
                }
                for item in estimate.scenarios
            ],
            "assumptions": list(estimate.assumptions),
        }
    return data


# Only the local network's prices are known offline; real ones come from the root contract.
PRICES_NOTE = {
    "devnet": "the local test network's prices (the reference test mode: 1 nanoton per token)",
    "other": "the reference test-mode price (1 nanoton per token); the live network's price "
    "comes from the COCOON root contract",
}


def print_estimate(estimate: EarningsEstimate, network: str, out: TextIO) -> None:
    print(f"Earnings estimate at {PRICES_NOTE.get(network, PRICES_NOTE['other'])}:", file=out)
    for item in estimate.scenarios:
        print(
            f"  {item.name:<8} busy {item.busy_fraction:4.0%}: "
            f"{format_ton(item.nanotons_per_day, trim=True)} TON/day "
            f"({item.billed_tokens_per_day} tokens)",
            file=out,
        )
    for line in estimate.assumptions:
        print(f"  · {line}", file=out)


def print_report(outcome: BenchmarkOutcome, out: TextIO) -> None:
    result = outcome.result
    source = " (cached; --no-cache measures again)" if outcome.from_cache else ""
    print(f"Benchmark of {result.model} on {result.device}{source}", file=out)
    for title, figures in (
        ("1 request", result.single),
        (f"{result.parallel} requests at once", result.batched),
    ):
        print(f"  {title}:", file=out)
        print(f"    generation      {_spread(figures.generation_tps, 'tokens/s')}", file=out)
        print(f"    per answer      {_spread(figures.stream_tps, 'tokens/s')}", file=out)
        print(f"    prompt          {_spread(figures.prompt_tps, 'tokens/s')}", file=out)
        print(f"    first token     {_spread(figures.ttft_ms, 'ms')}", file=out)
    print(
        f"  {result.single.repeats} repeats, {result.max_tokens} tokens per answer, "
        f"{result.elapsed_s:.0f} s",
        file=out,
    )
    if result.budget_exhausted:
        print("  The time budget ended the run early; use --budget for more repeats.", file=out)


def _spread(spread: Spread, unit: str) -> str:
    return f"{spread.median:8.1f} {unit} (range {spread.low:.1f}–{spread.high:.1f})"
