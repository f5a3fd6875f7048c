"""``eventually``: let the loop run until a condition holds (a bound on waiting, not a timing)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(
    check: Callable[[], object], *, limit_s: float = 20.0, pump: Callable[[], None] | None = None
) -> None:
    """Poll ``check`` while the event loop runs; ``pump`` (e.g. Qt's processEvents) runs too.

    State such as a widget's text or a counter has no event to await, hence the polling.
    """
    async with asyncio.timeout(limit_s):
        while not check():
            if pump is not None:
                pump()
            await asyncio.sleep(0.02)
