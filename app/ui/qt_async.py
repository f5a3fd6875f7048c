"""The only module that imports qasync: the Qt event loop for asyncio and a typed ``async_slot``.

qasync ships no type information, so ``mypy --strict`` rejects its decorators; this facade keeps
qasync's behaviour (exceptions reach ``sys.excepthook``, tasks are kept alive) behind typed names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, cast

import qasync

P = ParamSpec("P")

QEventLoop = qasync.QEventLoop


def async_slot(*types: type) -> Callable[[Callable[P, Awaitable[None]]], Callable[P, None]]:
    """Decorate a coroutine method so a Qt signal can call it; it runs as a task on the Qt loop."""
    decorator = cast(Callable[[Callable[..., Any]], Callable[..., Any]], qasync.asyncSlot(*types))

    def wrap(func: Callable[P, Awaitable[None]]) -> Callable[P, None]:
        return cast(Callable[P, None], decorator(func))

    return wrap
