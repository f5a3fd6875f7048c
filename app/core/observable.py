"""``Observable[T]``: a current value plus typed subscriptions; how services publish state."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

_log = logging.getLogger(__name__)

Unsubscribe = Callable[[], None]


class Observable(Generic[T]):
    """Holds the latest immutable snapshot of some state and tells subscribers when it changes.

    Not thread-safe by design: services call :meth:`set` on the event-loop thread only (worker
    threads hand results back through the loop). Subscribers run synchronously inside ``set``; a
    subscriber that raises is logged and does not stop the others.
    """

    __slots__ = ("_subscribers", "_value")

    def __init__(self, initial: T) -> None:
        self._value = initial
        self._subscribers: list[Callable[[T], None]] = []

    @property
    def value(self) -> T:
        return self._value

    def set(self, value: T) -> None:
        """Publish ``value``; subscribers are called only when it differs from the current one."""
        if value == self._value:
            return
        self._value = value
        for callback in tuple(self._subscribers):
            try:
                callback(value)
            except Exception:
                _log.exception("state subscriber %r failed", callback)

    def subscribe(self, callback: Callable[[T], None], *, replay: bool = False) -> Unsubscribe:
        """Call ``callback`` on every change (and now if ``replay``); returns the unsubscriber."""
        self._subscribers.append(callback)
        if replay:
            callback(self._value)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
