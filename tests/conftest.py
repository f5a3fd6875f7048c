"""Suite-wide set-up: Qt offscreen, no public network, an in-memory keyring, failing on unexpected
log warnings."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("COCOON_PROVIDER_QUIET_LOGS", "1")
# The live TON backend never dials public liteservers from the test suite (child processes too);
# its live path is tested against local fakes instead.
os.environ.setdefault("COCOON_PROVIDER_OFFLINE", "1")

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """A process-local keyring so tests never touch (or wait on) the real OS keyring."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self._items.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


keyring.set_keyring(MemoryKeyring())


class _FailOnWarnings(logging.Handler):
    """Collects WARNING+ records; the autouse fixture fails the test if any were unexpected."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_unexpected_log_warnings(request: pytest.FixtureRequest) -> Iterator[None]:
    """Any WARNING/ERROR log fails the test unless it is marked ``allow_log_warnings``."""
    handler = _FailOnWarnings()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    if request.node.get_closest_marker("allow_log_warnings") is None and handler.records:
        lines = "\n".join(f"{r.levelname} {r.name}: {r.getMessage()}" for r in handler.records)
        pytest.fail(
            f"unexpected log warnings (mark the test allow_log_warnings if expected):\n{lines}"
        )
