"""The service contract (``start()``/``aclose()``) and a group that runs services in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

_log = logging.getLogger(__name__)


@runtime_checkable
class Service(Protocol):
    """A long-lived component: owns its tasks, starts them in ``start``, ends them in ``aclose``.

    ``aclose`` must be idempotent, must not raise for ordinary shutdown, and must return only when
    every task the service started has finished.
    """

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class ServiceGroup:
    """Starts services in the given order and closes them in reverse, each close bounded in time."""

    def __init__(
        self, services: Sequence[tuple[str, Service]], *, close_timeout: float = 4.0
    ) -> None:
        self._services = list(services)
        self._started: list[tuple[str, Service]] = []
        self._close_timeout = close_timeout

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._services]

    async def start(self) -> None:
        try:
            for name, service in self._services:
                await service.start()
                self._started.append((name, service))
                _log.debug("service %s started", name)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        while self._started:
            name, service = self._started.pop()
            try:
                await asyncio.wait_for(service.aclose(), self._close_timeout)
            except TimeoutError:
                _log.error("service %s did not stop within %.1f s", name, self._close_timeout)
            except Exception:
                _log.exception("service %s failed while stopping", name)
