"""Continuous batching: one decode thread that serves many requests together, one sequence each.

Every step the thread puts the next token of each generating request and chunks of new prompts
into one ``llama_batch``, decodes it once, samples each sequence with its own sampler chain and
hands the text deltas back to the event loop. A finished or cancelled request frees its slot at
once; its KV cells stay as a prefix cache for the next request that starts the same way.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

import llama_cpp

from app.engine.server.model import LlamaModel
from app.engine.server.requests import RequestError, SamplingParams
from app.engine.server.sampling import build_sampler, free_sampler
from app.engine.server.text_stream import TextStream

_log = logging.getLogger(__name__)

FinishReason = Literal["stop", "length", "abort"]


@dataclass(frozen=True, slots=True)
class Completion:
    """How one request ended: token counts (for ``usage``) and engine-side timings."""

    finish_reason: FinishReason
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    prompt_ms: float
    generation_ms: float


class EngineError(RuntimeError):
    """llama.cpp failed to decode; the request cannot be completed."""


class Job:
    """One submitted request, shared by the HTTP handler (loop thread) and the decode thread.

    The decode thread only touches the private fields; results reach the handler through
    :meth:`_deliver`, which runs on the loop thread.
    """

    def __init__(
        self, prompt: list[int], max_tokens: int, sampling: SamplingParams, stops: tuple[str, ...]
    ) -> None:
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.sampling = sampling
        self.stops = stops
        self.cancelled = False  # set by the loop thread; read by the decode thread
        self.completion: Completion | None = None
        self.failure: EngineError | None = None
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()

    def __repr__(self) -> str:
        return f"Job(prompt_tokens={len(self.prompt)}, max_tokens={self.max_tokens})"

    def cancel(self) -> None:
        """Stop generating (the client went away); the slot is freed at the next step."""
        self.cancelled = True

    async def deltas(self) -> AsyncIterator[str]:
        """Text deltas as they are generated; ends when the job is finished."""
        while (delta := await self._queue.get()) is not None:
            yield delta
        if self.failure is not None:
            raise self.failure

    def _deliver(self, delta: str | None) -> None:
        self._queue.put_nowait(delta)


class _Slot:
    """One sequence id of the context and the request it is decoding (decode thread only)."""

    def __init__(self, seq_id: int) -> None:
        self.seq_id = seq_id
        self.cached: list[int] = []  # tokens whose KV cells this sequence holds
        self.job: Job | None = None
        self.pending: collections.deque[int] = collections.deque()
        self.next_token = -1
        self.sampler: Any = None
        self.text = TextStream()
        self.generated = 0
        self.cached_prompt = 0
        self.started = 0.0
        self.first_token_at = 0.0
        self.out_index = -1


class Batcher:
    """Owns the decode thread and the ``parallel`` slots of one :class:`LlamaModel`.

    :meth:`submit` and :meth:`shutdown` are called from the event loop; everything else runs on
    the decode thread. Requests beyond the free slots wait in a bounded FIFO queue.
    """

    def __init__(
        self,
        model: LlamaModel,
        loop: asyncio.AbstractEventLoop,
        max_queue: int,
        *,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self._model = model
        self._on_failure = on_failure
        self._loop = loop
        self._max_queue = max_queue
        self._slots = [_Slot(i) for i in range(model.shape.parallel)]
        self._waiting: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._accepting = True
        self._abort = False
        self._active = 0
        self._batch = llama_cpp.llama_batch_init(max(model.shape.batch, model.shape.parallel), 0, 1)
        self._batch_freed = False
        self._outbox: list[tuple[Job, str | None]] = []
        self._thread = threading.Thread(target=self._run, name="engine-decode", daemon=True)

    @property
    def parallel(self) -> int:
        return len(self._slots)

    @property
    def load(self) -> tuple[int, int]:
        """(requests decoding, requests waiting) — approximate, for health reports."""
        return self._active, len(self._waiting)

    def start(self) -> None:
        self._thread.start()

    def submit(
        self, prompt: list[int], max_tokens: int, sampling: SamplingParams, stops: tuple[str, ...]
    ) -> Job:
        """Queue a request; raises :class:`RequestError` 503 when stopping or the queue is full."""
        job = Job(prompt, max_tokens, sampling, stops)
        with self._cond:
            if not self._accepting:
                raise RequestError(503, "The engine is shutting down.", error_type="server_error")
            free = self.parallel - self._active
            if len(self._waiting) >= free + self._max_queue:
                # Requests whose clients already left do not hold places in the queue.
                self._waiting = collections.deque(j for j in self._waiting if not j.cancelled)
            if len(self._waiting) >= free + self._max_queue:
                raise RequestError(
                    503, "The engine is busy; try again shortly.", error_type="server_error"
                )
            self._waiting.append(job)
            self._cond.notify()
        return job

    async def shutdown(self, grace: float) -> None:
        """Refuse new requests, let running ones finish for ``grace`` s, then abort (idempotent)."""
        with self._cond:
            self._accepting = False
            self._cond.notify()
        deadline = time.monotonic() + grace
        while self._thread.is_alive() and time.monotonic() < deadline:
            with self._cond:
                if self._active == 0 and not self._waiting:
                    break
            await asyncio.sleep(0.05)
        with self._cond:
            self._abort = True
            self._cond.notify()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
        if not self._batch_freed:
            self._batch_freed = True
            llama_cpp.llama_batch_free(self._batch)

    # --- decode thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while self._admit():
                self._drop_cancelled()
                if any(slot.job is not None for slot in self._slots):
                    self._step()
                self._flush()
        except Exception:
            _log.exception("the decode loop failed")
            with self._cond:
                self._accepting = False
            self._fail_all(EngineError("the inference engine failed"))
            if self._on_failure is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closed
                    self._loop.call_soon_threadsafe(self._on_failure)
        finally:
            self._fail_all(None)
            self._flush()

    def _admit(self) -> bool:
        """Move waiting jobs into free slots; block while idle. False once the loop must end."""
        with self._cond:
            while True:
                if self._abort:
                    return False
                busy = any(slot.job is not None for slot in self._slots)
                if self._waiting and not all(slot.job is not None for slot in self._slots):
                    break
                if busy:
                    return True
                if not self._accepting:
                    return False
                self._cond.wait()
            while self._waiting:
                free = [slot for slot in self._slots if slot.job is None]
                if not free:
                    break
                job = self._waiting.popleft()
                if job.cancelled:
                    self._post(job, None)
                    continue
                self._assign(max(free, key=lambda s: _common_prefix(s.cached, job.prompt)), job)
            return True

    def _assign(self, slot: _Slot, job: Job) -> None:
        # Reuse the KV cells of the longest common prefix, but always decode the prompt's last
        # token again: its logits are needed to sample the first answer token.
        keep = min(_common_prefix(slot.cached, job.prompt), len(job.prompt) - 1)
        if not llama_cpp.llama_memory_seq_rm(self._model.memory, slot.seq_id, keep, -1):
            llama_cpp.llama_memory_seq_rm(self._model.memory, slot.seq_id, -1, -1)
            keep = 0
        slot.cached = job.prompt[:keep]
        slot.pending = collections.deque(job.prompt[keep:])
        slot.job = job
        slot.sampler = build_sampler(job.sampling, self._model.n_vocab)
        slot.text = TextStream(job.stops)
        slot.generated = 0
        slot.cached_prompt = keep
        slot.started = time.monotonic()
        slot.first_token_at = 0.0
        self._active += 1

    def _drop_cancelled(self) -> None:
        for slot in self._slots:
            if slot.job is not None and slot.job.cancelled:
                self._finish(slot, "abort")

    def _step(self) -> None:
        batch, size, capacity = self._batch, 0, max(self._model.shape.batch, self.parallel)
        for slot in self._slots:
            slot.out_index = -1
            if slot.job is not None and not slot.pending:
                size = self._add(batch, size, slot, slot.next_token, logits=True)
        for slot in self._slots:
            while slot.job is not None and slot.pending and size < capacity:
                token = slot.pending.popleft()
                size = self._add(batch, size, slot, token, logits=not slot.pending)
        batch.n_tokens = size
        status = llama_cpp.llama_decode(self._model.ctx, batch)
        if status != 0:
            raise EngineError(f"llama_decode returned {status}")
        now = time.monotonic()
        for slot in self._slots:
            if slot.job is not None and slot.out_index >= 0:
                self._sample(slot, now)

    def _add(self, batch: Any, index: int, slot: _Slot, token: int, *, logits: bool) -> int:
        batch.token[index] = token
        batch.pos[index] = len(slot.cached)
        batch.n_seq_id[index] = 1
        batch.seq_id[index][0] = slot.seq_id
        batch.logits[index] = logits
        slot.cached.append(token)
        if logits:
            slot.out_index = index
        return index + 1

    def _sample(self, slot: _Slot, now: float) -> None:
        job = slot.job
        if job is None:
            return
        token = llama_cpp.llama_sampler_sample(slot.sampler, self._model.ctx, slot.out_index)
        if slot.generated == 0:
            slot.first_token_at = now
        slot.generated += 1
        if self._model.is_end(token):
            self._finish(slot, "stop")
            return
        delta = slot.text.push(self._model.piece(token))
        if delta:
            self._post(job, delta)
        if slot.text.stopped:
            self._finish(slot, "stop")
        elif slot.generated >= job.max_tokens or len(slot.cached) >= self._model.shape.ctx:
            self._finish(slot, "length")
        else:
            slot.next_token = token

    def _finish(self, slot: _Slot, reason: FinishReason) -> None:
        job = slot.job
        if job is None:
            return
        if reason != "abort":
            tail = slot.text.finish()
            if tail:
                self._post(job, tail)
        end = time.monotonic()
        first = slot.first_token_at or end
        job.completion = Completion(
            finish_reason=reason,
            prompt_tokens=len(job.prompt),
            cached_tokens=slot.cached_prompt,
            completion_tokens=slot.generated,
            prompt_ms=(first - slot.started) * 1000.0,
            generation_ms=(end - first) * 1000.0,
        )
        free_sampler(slot.sampler)
        slot.sampler, slot.job = None, None
        slot.pending.clear()
        with self._cond:
            self._active -= 1
        self._post(job, None)

    def _fail_all(self, failure: EngineError | None) -> None:
        for slot in self._slots:
            if slot.job is not None:
                slot.job.failure = failure
                self._finish(slot, "abort")
        with self._cond:
            waiting, self._waiting = list(self._waiting), collections.deque()
        for job in waiting:
            job.failure = failure or EngineError("the engine stopped")
            self._post(job, None)

    def _post(self, job: Job, delta: str | None) -> None:
        self._outbox.append((job, delta))

    def _flush(self) -> None:
        # One wake-up of the event loop per decode step, not one per token.
        if not self._outbox:
            return
        outbox, self._outbox = self._outbox, []
        # RuntimeError: the loop is closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(_deliver_all, outbox)


def _deliver_all(outbox: list[tuple[Job, str | None]]) -> None:
    for job, delta in outbox:
        job._deliver(delta)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
