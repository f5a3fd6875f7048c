"""``LoopLagSampler``: how late the event loop wakes up from a periodic sleep (its lag), the
largest over a recent window; the metrics endpoint's ``event_loop_lag_seconds``."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

LAG_INTERVAL_S = 0.5
LAG_WINDOW = 20  # samples: 10 s at the default interval


class LoopLagSampler:
    """Sleeps ``interval`` seconds in a loop and records how much longer each sleep took.

    A service (``start()`` / ``aclose()``). ``clock`` and ``sleep`` are the loop's own unless a
    test gives others.
    """

    def __init__(
        self,
        *,
        interval: float = LAG_INTERVAL_S,
        window: int = LAG_WINDOW,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = interval
        self._samples: deque[float] = deque(maxlen=window)
        self._clock = clock
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None

    @property
    def lag_seconds(self) -> float:
        """The largest lag in the window (0.0 before the first sample)."""
        return max(self._samples, default=0.0)

    def record(self, expected_s: float, took_s: float) -> None:
        """One sleep of ``expected_s`` that took ``took_s``; an early wake-up counts as no lag."""
        self._samples.append(max(0.0, took_s - expected_s))

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="metrics: event-loop lag"
            )

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        clock = self._clock or asyncio.get_running_loop().time
        while True:
            before = clock()
            await self._sleep(self._interval)
            self.record(self._interval, clock() - before)
