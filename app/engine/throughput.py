"""Measuring an OpenAI-compatible server under load: streamed requests at a fixed concurrency.

Used by the ``bench`` command and by the scripts in ``benchmarks/``. Only counts and timings are
kept; the generated text is discarded as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from app.engine.endpoint import BackendEndpoint

# Continuation prompts: an instruct model answers these at length even with greedy sampling (a
# question ending in "?" often gets an immediate end-of-text from a raw completion).
_PREAMBLE = (
    "The following text was written for a magazine for curious readers of all ages. It uses "
    "plain English, complete sentences and vivid details, avoids lists, and keeps the facts "
    "plausible. Each article opens with a sentence that makes the reader want to go on.\n\n"
)
STANDARD_PROMPTS = tuple(
    _PREAMBLE + opening
    for opening in (
        "Once upon a time, in a small village by the sea, there lived",
        "The history of the bicycle begins in the early nineteenth century, when",
        "Here is a detailed recipe for tomato soup. First,",
        "The three most important things to know about saving money are",
        "In the year 2150, the first city on Mars",
        "Dear diary, today was the strangest day of my life because",
        "The rules of chess are simple to learn. Each player starts with",
        "A guide to planting a vegetable garden: begin by choosing",
    )
)


class LoadError(RuntimeError):
    """The server answered a measurement request with an error or a malformed stream."""


@dataclass(frozen=True, slots=True)
class RequestSample:
    """One streamed request: tokens (from ``usage``, else counted chunks) and client timings."""

    prompt_tokens: int
    completion_tokens: int
    ttft_s: float
    total_s: float


@dataclass(frozen=True, slots=True)
class LoadRound:
    """Requests run ``concurrency`` at a time; ``wall_s`` spans the first send to the last byte."""

    concurrency: int
    samples: tuple[RequestSample, ...]
    wall_s: float

    @property
    def generated_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.samples)

    @property
    def generation_tps(self) -> float:
        """Aggregate generated tokens per second (what a worker is paid for)."""
        return self.generated_tokens / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def prompt_tokens(self) -> int:
        return sum(s.prompt_tokens for s in self.samples)

    @property
    def served_prompt_tps(self) -> float:
        """Prompt tokens of the round per second of wall time (they are billed too)."""
        return self.prompt_tokens / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def stream_tps(self) -> float:
        """Median speed one client sees once its answer streams: tokens after the first per s."""
        rates = [
            (s.completion_tokens - 1) / (s.total_s - s.ttft_s)
            for s in self.samples
            if s.completion_tokens > 1 and s.total_s > s.ttft_s
        ]
        return statistics.median(rates) if rates else 0.0

    @property
    def median_ttft_s(self) -> float:
        return statistics.median(s.ttft_s for s in self.samples) if self.samples else 0.0

    @property
    def prompt_tps(self) -> float:
        """Prompt tokens per second of time-to-first-token (prompt processing, plus queueing)."""
        ttft = sum(s.ttft_s for s in self.samples)
        return self.prompt_tokens / ttft if ttft > 0 else 0.0


def open_session(endpoint: BackendEndpoint, concurrency: int) -> aiohttp.ClientSession:
    """A client session that reaches ``endpoint`` (Unix socket or TCP) with its Bearer key."""
    connector: aiohttp.BaseConnector
    if endpoint.unix_socket is not None:
        connector = aiohttp.UnixConnector(path=str(endpoint.unix_socket), limit=concurrency + 2)
    else:
        connector = aiohttp.TCPConnector(limit=concurrency + 2, force_close=True)
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    return aiohttp.ClientSession(
        base_url=endpoint.base_url,
        connector=connector,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=None, sock_read=120),
    )


async def run_round(
    session: aiohttp.ClientSession,
    prompts: Sequence[str],
    *,
    concurrency: int,
    requests: int,
    max_tokens: int,
    model: str | None = None,
    fresh: bool = True,
) -> LoadRound:
    """Send ``requests`` completions, ``concurrency`` at a time, cycling through ``prompts``.

    ``fresh`` makes each prompt start differently so that no server can answer from its cache.
    """
    queue: asyncio.Queue[str] = asyncio.Queue()
    for index in range(requests):
        prompt = prompts[index % len(prompts)]
        # A unique opening defeats prefix caches, so every request pays for its whole prompt,
        # as requests from different users do.
        queue.put_nowait(f"[{secrets.token_hex(4)}] {prompt}" if fresh else prompt)
    samples: list[RequestSample] = []

    async def worker() -> None:
        while not queue.empty():
            prompt = queue.get_nowait()
            samples.append(await stream_completion(session, prompt, max_tokens, model))

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, requests)):
            group.create_task(worker())
    return LoadRound(concurrency, tuple(samples), time.perf_counter() - started)


async def stream_completion(
    session: aiohttp.ClientSession, prompt: str, max_tokens: int, model: str | None
) -> RequestSample:
    """One greedy, streamed ``/v1/completions`` request, timed from the client's side."""
    body: dict[str, Any] = {
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if model is not None:
        body["model"] = model
    started = time.perf_counter()
    first: float | None = None
    chunks, usage = 0, None
    async with session.post("/v1/completions", json=body) as response:
        if response.status != 200:
            raise LoadError(f"the server answered HTTP {response.status}")
        async for line in response.content:
            event = _sse_event(line)
            if event is None:
                continue
            if event.get("usage"):
                usage = event["usage"]
            if any(choice.get("text") for choice in event.get("choices") or ()):
                chunks += 1
                first = first or time.perf_counter()
    ended = time.perf_counter()
    prompt_tokens = int(usage["prompt_tokens"]) if usage else 0
    completion_tokens = int(usage["completion_tokens"]) if usage else chunks
    return RequestSample(
        prompt_tokens, completion_tokens, (first or ended) - started, ended - started
    )


def _sse_event(line: bytes) -> dict[str, Any] | None:
    text = line.strip()
    if not text.startswith(b"data:"):
        return None
    data = text[5:].strip()
    if data == b"[DONE]":
        return None
    try:
        event = json.loads(data)
    except json.JSONDecodeError as exc:
        raise LoadError("the server sent a malformed stream event") from exc
    if not isinstance(event, dict):
        raise LoadError("the server sent a malformed stream event")
    if "error" in event:
        raise LoadError("the server reported an error mid-stream")
    return event


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for servers that cannot take 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def running_server(command: Sequence[str], endpoint: BackendEndpoint) -> AsyncIterator[None]:
    """Start a server process and wait until ``/v1/models`` answers; stop it afterwards."""
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        async with open_session(endpoint, 1) as session:
            for _ in range(600):
                if proc.returncode is not None:
                    raise RuntimeError(f"{command[:3]} exited with {proc.returncode}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get("/v1/models") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"{command[:3]} did not become ready")
        yield
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
