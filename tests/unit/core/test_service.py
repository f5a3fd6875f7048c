"""ServiceGroup: start order, reverse close, rollback on a failed start, bounded close."""

from __future__ import annotations

import asyncio

import pytest

from app.core.service import Service, ServiceGroup


class Recorder:
    def __init__(
        self,
        name: str,
        log: list[str],
        *,
        fail_start: bool = False,
        hang_close: bool = False,
        fail_close: bool = False,
    ) -> None:
        self.name, self.log = name, log
        self.fail_start, self.hang_close, self.fail_close = fail_start, hang_close, fail_close

    async def start(self) -> None:
        if self.fail_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def aclose(self) -> None:
        self.log.append(f"close {self.name}")
        if self.hang_close:
            await asyncio.Event().wait()
        if self.fail_close:
            raise RuntimeError("close failed")


async def test_start_and_close_order() -> None:
    log: list[str] = []
    group = ServiceGroup([("a", Recorder("a", log)), ("b", Recorder("b", log))])
    assert isinstance(Recorder("x", log), Service)
    await group.start()
    await group.aclose()
    await group.aclose()
    assert log == ["start a", "start b", "close b", "close a"]
    assert group.names == ["a", "b"]


async def test_failed_start_closes_started_ones() -> None:
    log: list[str] = []
    group = ServiceGroup([("a", Recorder("a", log)), ("b", Recorder("b", log, fail_start=True))])
    with pytest.raises(RuntimeError, match="b cannot start"):
        await group.start()
    assert log == ["start a", "close a"]


@pytest.mark.allow_log_warnings
async def test_close_is_bounded_and_survives_errors() -> None:
    log: list[str] = []
    group = ServiceGroup(
        [("a", Recorder("a", log, fail_close=True)), ("b", Recorder("b", log, hang_close=True))],
        close_timeout=0.05,
    )
    await group.start()
    await group.aclose()
    assert log == ["start a", "start b", "close b", "close a"]
