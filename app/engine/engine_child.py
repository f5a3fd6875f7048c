"""One running engine child as the supervisor sees it: its process, its output streams, its end.

``EngineChild`` holds the process, the endpoint once known and the last stderr lines. The readers
parse the JSON ``ready`` event from stdout (nothing else there is kept) and copy stderr to the
engine's own rotating, redacted log; ``exit_reason`` words a death for the user.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import logging.handlers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.logs import RedactionFilter, redact
from app.engine.endpoint import BackendEndpoint

STDERR_TAIL = 20


@dataclass(eq=False)
class EngineChild:
    """The engine process of one run, its endpoint (set once ready) and its reader tasks."""

    proc: asyncio.subprocess.Process
    endpoint: BackendEndpoint | None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stderr_tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=STDERR_TAIL)
    )
    readers: list[asyncio.Task[None]] = field(default_factory=list)


class ChildFailedError(Exception):
    """The child died, hung or never became ready; the message is user-facing."""


async def read_stdout(child: EngineChild, *, api_key: str | None, capacity: int) -> None:
    """Parse the child's JSON event lines; nothing else on stdout is kept or logged."""
    if child.proc.stdout is None:  # pragma: no cover - always created with stdout=PIPE
        return
    async for raw in child.proc.stdout:
        event = json_event(raw)
        if event is None or event.get("event") != "ready":
            continue
        if child.endpoint is None:
            port = event.get("port")
            if not isinstance(port, int):
                continue
            child.endpoint = BackendEndpoint(
                base_url=f"http://127.0.0.1:{port}", api_key=api_key, capacity=capacity
            )
        child.ready.set()


async def read_stderr(child: EngineChild, engine_log: logging.Handler | None) -> None:
    """Keep the last stderr lines for :func:`exit_reason` and copy them to the engine log."""
    if child.proc.stderr is None:  # pragma: no cover - always created with stderr=PIPE
        return
    async for raw in child.proc.stderr:
        line = raw.decode("utf-8", "replace").rstrip()
        if line:
            child.stderr_tail.append(line)
            if engine_log is not None:
                engine_log.handle(logging.makeLogRecord({"msg": line, "args": None}))


async def exit_reason(child: EngineChild, when: str) -> str:
    """``The engine exited with code 1 while starting: <last stderr line, redacted>``."""
    # The last stderr lines may still be in the pipe; a leftover grandchild can hold the
    # pipe open, so the wait is bounded.
    await asyncio.wait(child.readers, timeout=2.0)
    code = child.proc.returncode
    if code is not None and code < 0:
        how = f"was killed by signal {-code}"
    else:
        how = f"exited with code {code}"
    last = child.stderr_tail[-1] if child.stderr_tail else ""
    detail = f": {redact(last)[:300]}" if last else ""
    return f"The engine {how} {when}{detail}"


def json_event(raw: bytes) -> dict[str, Any] | None:
    """One stdout line as a JSON object, or None when it is not one."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def engine_log_handler(path: Path) -> logging.Handler:
    """The engine's own rotating log file; lines go straight to it, never to the app's log."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=2 * 1024 * 1024, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    handler.addFilter(RedactionFilter())
    return handler
