"""The engine benchmark: what this machine earns per second, measured, and cached per hardware.

A run warms the engine up, then repeats two rounds within a hard time budget: one request alone
(time-to-first-token, prompt and generation speed) and as many at once as the engine has slots
(aggregate generation speed). Results are cached per (GPU, driver, model hash, engine version).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.atomic import write_private_atomic
from app.core.errors import UserFacingError
from app.engine.download import hash_file
from app.engine.endpoint import BackendEndpoint
from app.engine.throughput import (
    STANDARD_PROMPTS,
    LoadError,
    LoadRound,
    open_session,
    run_round,
)

_log = logging.getLogger(__name__)

CACHE_FILE_NAME = "benchmarks.json"
RESULT_VERSION = 1
HASH_TIMEOUT_S = 600.0

Progress = Callable[[str], None]


class BenchmarkError(UserFacingError):
    """The benchmark could not produce a result."""


@dataclass(frozen=True, slots=True)
class BenchmarkKey:
    """What a result depends on: the GPU (``"cpu"`` without one), its driver, model and engine."""

    gpu_uuid: str
    driver: str
    model_sha256: str
    engine_version: str

    def as_text(self) -> str:
        return "|".join((self.gpu_uuid, self.driver, self.model_sha256, self.engine_version))


@dataclass(frozen=True, slots=True)
class Spread:
    """Median and range of one figure over the repeats."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))


@dataclass(frozen=True, slots=True)
class ConcurrencyFigures:
    """Figures at one concurrency, each a :class:`Spread` over the repeats.

    ``generation_tps``: generated tokens per second of wall time, all requests together (prompt
    processing included); ``served_prompt_tps``: their prompt tokens per second of wall time;
    ``stream_tps``: how fast one answer streams once it started; ``prompt_tps``: prompt tokens per
    second of time-to-first-token; ``ttft_ms``: median time to the first token.
    """

    concurrency: int
    generation_tps: Spread
    served_prompt_tps: Spread
    stream_tps: Spread
    prompt_tps: Spread
    ttft_ms: Spread
    repeats: int


@dataclass(frozen=True, slots=True)
class BenchmarkResult:
    """One finished benchmark; the input of :func:`app.engine.earnings.estimate_earnings`."""

    key: BenchmarkKey
    model: str
    device: str
    parallel: int
    single: ConcurrencyFigures
    batched: ConcurrencyFigures
    max_tokens: int
    measured_at: float
    elapsed_s: float
    budget_exhausted: bool

    def to_json(self) -> dict[str, Any]:
        return {"version": RESULT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchmarkResult:
        """Rebuild a cached result; ``ValueError`` if malformed or from another version."""
        try:
            if data["version"] != RESULT_VERSION:
                raise ValueError("another result version")
            return cls(
                key=BenchmarkKey(**data["key"]),
                model=str(data["model"]),
                device=str(data["device"]),
                parallel=int(data["parallel"]),
                single=_figures(data["single"]),
                batched=_figures(data["batched"]),
                max_tokens=int(data["max_tokens"]),
                measured_at=float(data["measured_at"]),
                elapsed_s=float(data["elapsed_s"]),
                budget_exhausted=bool(data["budget_exhausted"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError("malformed benchmark result") from exc


def _figures(data: dict[str, Any]) -> ConcurrencyFigures:
    return ConcurrencyFigures(
        concurrency=int(data["concurrency"]),
        generation_tps=Spread(**data["generation_tps"]),
        served_prompt_tps=Spread(**data["served_prompt_tps"]),
        stream_tps=Spread(**data["stream_tps"]),
        prompt_tps=Spread(**data["prompt_tps"]),
        ttft_ms=Spread(**data["ttft_ms"]),
        repeats=int(data["repeats"]),
    )


@dataclass(frozen=True, slots=True)
class BenchmarkPlan:
    """How long and how hard to measure. ``budget_s`` is a hard limit on the measuring."""

    budget_s: float = 60.0
    repeats: int = 3
    max_tokens: int = 64
    prompts: tuple[str, ...] = STANDARD_PROMPTS


async def measure_engine(
    endpoint: BackendEndpoint,
    *,
    key: BenchmarkKey,
    model: str,
    device: str,
    plan: BenchmarkPlan,
    progress: Progress = lambda _line: None,
) -> BenchmarkResult:
    """Measure a running engine; stops repeating when the budget would be exceeded."""
    started = time.monotonic()
    deadline = started + plan.budget_s
    parallel = max(1, endpoint.capacity)
    single: list[LoadRound] = []
    batched: list[LoadRound] = []
    exhausted = False
    async with open_session(endpoint, parallel) as session:
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                progress("warming up")
                await run_round(session, plan.prompts, concurrency=1, requests=1, max_tokens=8)
                for repeat in range(1, plan.repeats + 1):
                    progress(f"round {repeat}/{plan.repeats}: 1 request")
                    single.append(await _round(session, plan, 1))
                    progress(f"round {repeat}/{plan.repeats}: {parallel} requests at once")
                    batched.append(await _round(session, plan, parallel))
                    if not _time_for_another(started, deadline, repeat):
                        exhausted = repeat < plan.repeats
                        break
        except TimeoutError:
            exhausted = True
        except (LoadError, OSError) as exc:
            raise BenchmarkError(
                "The inference engine failed during the benchmark.",
                hint="See the engine log in the logs folder.",
            ) from exc
    rounds = min(len(single), len(batched))
    if rounds == 0:
        raise BenchmarkError(
            f"The benchmark did not finish one round within {plan.budget_s:.0f} seconds.",
            hint="Give it more time with --budget, or choose a smaller model.",
        )
    return BenchmarkResult(
        key=key,
        model=model,
        device=device,
        parallel=parallel,
        single=_summarise(single[:rounds], 1),
        batched=_summarise(batched[:rounds], parallel),
        max_tokens=plan.max_tokens,
        measured_at=time.time(),
        elapsed_s=time.monotonic() - started,
        budget_exhausted=exhausted,
    )


async def _round(session: Any, plan: BenchmarkPlan, concurrency: int) -> LoadRound:
    return await run_round(
        session,
        plan.prompts,
        concurrency=concurrency,
        requests=concurrency,
        max_tokens=plan.max_tokens,
    )


def _time_for_another(started: float, deadline: float, done: int) -> bool:
    per_repeat = (time.monotonic() - started) / done
    return time.monotonic() + per_repeat <= deadline


def _loop_time(deadline: float) -> float:
    # asyncio.timeout_at wants the loop's clock; convert from time.monotonic().
    return asyncio.get_running_loop().time() + (deadline - time.monotonic())


def _summarise(rounds: Sequence[LoadRound], concurrency: int) -> ConcurrencyFigures:
    return ConcurrencyFigures(
        concurrency=concurrency,
        generation_tps=Spread.of([r.generation_tps for r in rounds]),
        served_prompt_tps=Spread.of([r.served_prompt_tps for r in rounds]),
        stream_tps=Spread.of([r.stream_tps for r in rounds]),
        prompt_tps=Spread.of([r.prompt_tps for r in rounds]),
        ttft_ms=Spread.of([r.median_ttft_s * 1000.0 for r in rounds]),
        repeats=len(rounds),
    )


async def model_sha256(path: Path, known: str | None = None) -> str:
    """The model's SHA-256: the catalog's value when known, else hashed off the event loop."""
    if known:
        return known.lower()
    hasher = await asyncio.wait_for(asyncio.to_thread(hash_file, path), HASH_TIMEOUT_S)
    return str(hasher.hexdigest())


class BenchmarkCache:
    """Results by :class:`BenchmarkKey` in one JSON file in the data dir's cache folder.

    A damaged file is treated as empty (and replaced at the next store): a cache may be lost,
    it only costs one more benchmark run.
    """

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / CACHE_FILE_NAME

    def load(self, key: BenchmarkKey) -> BenchmarkResult | None:
        entry = self._read().get(key.as_text())
        if not isinstance(entry, dict):
            return None
        try:
            result = BenchmarkResult.from_json(entry)
        except ValueError:
            _log.info("ignoring an unreadable cached benchmark result")
            return None
        return result if result.key == key else None

    def store(self, result: BenchmarkResult) -> None:
        entries = self._read()
        entries[result.key.as_text()] = result.to_json()
        data = json.dumps(entries, indent=1, sort_keys=True).encode()
        write_private_atomic(self.path, data)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            _log.info("the benchmark cache %s is unreadable; starting afresh", self.path)
            return {}
        return data if isinstance(data, dict) else {}
