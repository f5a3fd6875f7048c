"""``DemandGenerator``: simulated client traffic for the local network, at a steady average rate.

Requests go through the devnet client API exactly as an app's backend would send them, so the whole
path (client API → test proxy → worker → engine) is exercised. Prompts are a fixed public list;
neither they nor the answers are stored or logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, replace

import aiohttp

from app.core.observable import Observable

_log = logging.getLogger(__name__)

PROMPTS: tuple[str, ...] = (
    "Explain in two sentences why the sky is blue.",
    "Write a haiku about a graphics card.",
    "Give three tips for saving electricity at home.",
    "Summarise what a blockchain is for a ten-year-old.",
    "Translate 'good morning, how are you?' into French and Spanish.",
    "List four uses of a spreadsheet.",
    "What is the capital of Australia? Answer in one word.",
    "Suggest a name for a friendly robot.",
)
MAX_IN_FLIGHT = 4
REQUEST_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class DemandStatus:
    """Counters of the simulated clients since start."""

    rate_per_minute: int = 0
    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    in_flight: int = 0
    waiting_for_worker: bool = True
    last_error: str = ""


class DemandGenerator:
    """Sends chat completions to ``client_url`` at ``rate_per_minute`` on average (Poisson).

    ``model_names`` returns the models some worker currently serves; while it is empty, nothing
    is sent (the local network waits for the user's worker instead of logging failures).
    """

    def __init__(
        self,
        client_url: Callable[[], str],
        model_names: Callable[[], list[str]],
        *,
        rate_per_minute: int,
        max_tokens: int = 48,
        rng: random.Random | None = None,
    ) -> None:
        self._client_url = client_url
        self._model_names = model_names
        self._max_tokens = max_tokens
        self._rng = rng or random.Random()  # noqa: S311 - traffic timing, not security
        self.status: Observable[DemandStatus] = Observable(
            DemandStatus(rate_per_minute=rate_per_minute)
        )
        self._task: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[bool]] = set()
        self._session: aiohttp.ClientSession | None = None

    def set_rate(self, rate_per_minute: int) -> None:
        self.status.set(replace(self.status.value, rate_per_minute=max(0, rate_per_minute)))

    async def start(self) -> None:
        if self._task is not None:
            return
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))
        self._task = asyncio.create_task(self._run(), name="devnet-demand")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for request in list(self._requests):
            request.cancel()
        await asyncio.gather(*self._requests, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def send_one(self) -> bool:
        """Send one request now (also used by tests and the UI's "send a test request")."""
        models = self._model_names()
        if not models or self._session is None:
            return False
        body = {
            "model": self._rng.choice(models),
            "messages": [{"role": "user", "content": self._rng.choice(PROMPTS)}],
            "max_tokens": self._max_tokens,
            "stream": self._rng.random() < 0.5,
        }
        self._count(sent=1, in_flight=1)
        try:
            async with self._session.post(
                f"{self._client_url()}/v1/chat/completions", json=body
            ) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
            _log.info("simulated request failed: %s", exc)
            self._count(failed=1, in_flight=-1, error=str(exc) or type(exc).__name__)
            return False
        except asyncio.CancelledError:
            self._count(in_flight=-1)  # stopped mid-request: neither a success nor a failure
            raise
        self._count(succeeded=1, in_flight=-1)
        return True

    async def _run(self) -> None:
        while True:
            rate = self.status.value.rate_per_minute
            if rate <= 0:
                await asyncio.sleep(1.0)
                continue
            await asyncio.sleep(self._rng.expovariate(rate / 60.0))
            waiting = not self._model_names()
            if waiting != self.status.value.waiting_for_worker:
                self.status.set(replace(self.status.value, waiting_for_worker=waiting))
            if waiting or len(self._requests) >= MAX_IN_FLIGHT:
                continue
            task = asyncio.create_task(self.send_one())
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    def _count(
        self,
        *,
        sent: int = 0,
        succeeded: int = 0,
        failed: int = 0,
        in_flight: int = 0,
        error: str | None = None,
    ) -> None:
        now = self.status.value
        self.status.set(
            replace(
                now,
                sent=now.sent + sent,
                succeeded=now.succeeded + succeeded,
                failed=now.failed + failed,
                in_flight=now.in_flight + in_flight,
                last_error=now.last_error if error is None else error,
            )
        )
