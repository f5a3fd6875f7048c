"""Observable: current value, change-only notification, unsubscribe, failing subscribers."""

from __future__ import annotations

import pytest

from app.core.observable import Observable


def test_notifies_on_change_only() -> None:
    seen: list[int] = []
    box = Observable(1)
    unsubscribe = box.subscribe(seen.append)
    box.set(1)
    box.set(2)
    box.set(2)
    unsubscribe()
    box.set(3)
    assert seen == [2]
    assert box.value == 3
    assert box.subscriber_count == 0
    unsubscribe()  # idempotent


def test_replay_sends_current_value() -> None:
    seen: list[str] = []
    Observable("a").subscribe(seen.append, replay=True)
    assert seen == ["a"]


@pytest.mark.allow_log_warnings
def test_failing_subscriber_does_not_stop_others(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[int] = []

    def broken(_: int) -> None:
        raise RuntimeError("boom")

    box = Observable(0)
    box.subscribe(broken)
    box.subscribe(seen.append)
    box.set(5)
    assert seen == [5]
    assert "state subscriber" in caplog.text
