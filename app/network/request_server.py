"""``RequestServer``: serves one proxy query end to end and publishes the live serving status.

Caps concurrency, validates, forwards to the backend, streams the answer back through the sink as
it arrives while counting tokens, bills with the proxy's coefficient, and records a job (with the
energy a :class:`JobObserver` attributes to it).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from app.core.billing import BillingParams, RawTokens, worker_earnings
from app.core.money import Nanoton
from app.core.observable import Observable
from app.engine.endpoint import BackendEndpoint
from app.network.answer import (
    ERROR_ERROR,
    ERROR_TIMEOUT,
    ZERO_TOKENS,
    AnswerSink,
    FinalInfo,
    Headers,
    HttpRequest,
    QueryContext,
    TokensUsed,
)
from app.network.backend_client import (
    DEFAULT_CONNECT_TIMEOUT,
    BackendClient,
    BackendError,
    BackendExchange,
    BackendTimeout,
)
from app.network.backend_client import (
    DEFAULT_MAX_BODY_BYTES as DEFAULT_MAX_ANSWER_BYTES,
)
from app.network.jobs import (
    STATUS_BUSY,
    STATUS_CANCELLED,
    STATUS_FAILED,
    STATUS_HTTP_ERROR,
    STATUS_OK,
    STATUS_REJECTED,
    STATUS_TIMEOUT,
    JobRecord,
    JobStore,
    hash_request_id,
)
from app.network.request_validation import (
    DEFAULT_MAX_BODY_BYTES,
    RequestRejected,
    base_model_name,
    validate_head,
    validate_request,
)
from app.network.usage import AnswerMeter
from app.network.worker_config import DEFAULT_MAX_ACTIVE_REQUESTS

_log = logging.getLogger(__name__)

# The proxy's timeout bounds the whole query; the backend gets 95 % of it, as in the reference.
BACKEND_TIMEOUT_SHARE = 0.95
_MAX_TIMEOUT = 3600.0
_DRAIN_TIMEOUT = 5.0
_ANSWER_HEADERS_DROPPED = frozenset({"content-length", "transfer-encoding", "connection"})
# Observer keys are unique in the process: request ids repeat (retries, tests) and several servers
# (one per earning session) may share one observer.
_job_numbers = itertools.count(1)


class JobObserver(Protocol):
    """Told when each query starts and ends (refused, failed and cancelled ones too).

    Every ``job_started`` is matched by exactly one ``job_finished`` with the same key, which
    returns the job's energy in Wh (None when unknown) and learns what the job earned. Both run
    on the event loop and must be quick; an exception is logged and costs only the energy figure.
    """

    def job_started(self, job_key: str, /) -> None: ...

    def job_finished(self, job_key: str, earned_nanotons: Nanoton, /) -> float | None: ...


@dataclass(frozen=True, slots=True)
class ServingStatus:
    """Live serving figures for the UI. ``tokens`` are adjusted tokens summed over all requests."""

    active: int = 0
    max_active: int = DEFAULT_MAX_ACTIVE_REQUESTS
    served: int = 0
    failed: int = 0
    busy_refusals: int = 0
    tokens: TokensUsed = field(default=ZERO_TOKENS)
    earned_nanotons: int = 0
    last_error: str = ""


@dataclass(slots=True)
class _Outcome:
    status: str = STATUS_OK
    http_status: int = 0
    error_code: int = 0
    error_message: str = ""
    answer_bytes: int = 0


class RequestServer:
    """Serves queries against one backend. A service: ``start()`` / ``aclose()``.

    ``model`` is the worker's model name (``name@commit:verity`` or just ``name``); requests must
    name its base. ``billing`` comes from the root contract config. ``jobs`` (optional) receives
    a :class:`JobRecord` for every query, refused ones included. ``observer`` (optional) is told
    when each query starts and ends; the energy it returns goes into the job record.
    """

    def __init__(
        self,
        endpoint: BackendEndpoint,
        *,
        model: str,
        billing: BillingParams | None = None,
        max_active_requests: int = DEFAULT_MAX_ACTIVE_REQUESTS,
        jobs: JobStore | None = None,
        observer: JobObserver | None = None,
        max_request_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_answer_bytes: int | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.model = model
        self.billing = billing or BillingParams()
        self.max_request_bytes = max_request_bytes
        self._jobs = jobs
        self._observer = observer
        self._clock = clock
        self._connect_timeout = connect_timeout
        self._max_answer_bytes = max_answer_bytes or DEFAULT_MAX_ANSWER_BYTES
        self._client = self._new_client(endpoint)
        self._tasks: set[asyncio.Task[object]] = set()
        self._closing = False
        self.status: Observable[ServingStatus] = Observable(
            ServingStatus(max_active=max_active_requests)
        )

    # --- configuration -----------------------------------------------------------------

    @property
    def max_active_requests(self) -> int:
        return self.status.value.max_active

    def set_endpoint(self, endpoint: BackendEndpoint) -> None:
        """Point new requests at another backend (the engine restarted elsewhere)."""
        old, self._client = self._client, self._new_client(endpoint)
        old.close()  # idle connections only; requests in flight finish on their own

    def _new_client(self, endpoint: BackendEndpoint) -> BackendClient:
        return BackendClient(
            endpoint, connect_timeout=self._connect_timeout, max_body_bytes=self._max_answer_bytes
        )

    # --- service -----------------------------------------------------------------------

    async def start(self) -> None:
        self._closing = False

    async def aclose(self) -> None:
        """Refuse new queries, give running ones a moment, then cancel them; close the pool."""
        self._closing = True
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=_DRAIN_TIMEOUT)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        await self._client.aclose()

    # --- serving -----------------------------------------------------------------------

    async def serve(self, query: QueryContext, request: HttpRequest, sink: AnswerSink) -> JobRecord:
        """Answer one query through ``sink``; returns its job record (also saved to the store).

        Never raises for a bad request or a failing backend (the sink gets the error); raises
        ``CancelledError`` when cancelled, after recording the job as cancelled. Whatever else a
        sink raises is recorded as a failed job and passed on.
        """
        started = self._clock()
        meter = AnswerMeter(query.coefficient, self.billing)
        outcome = _Outcome()
        counted = False
        task = asyncio.current_task()
        job_key = self._observe_start(query)  # from here on, the finally below ends the job
        try:
            status = self.status.value
            if self._closing or status.active >= status.max_active:
                message = "too many active queries" if not self._closing else "worker is stopping"
                outcome.status, outcome.error_code = STATUS_BUSY, ERROR_ERROR
                outcome.error_message = message
                await sink.error(ERROR_ERROR, message, self._final(query, started, meter, None))
            else:
                counted = True
                if task is not None:
                    self._tasks.add(task)
                self.status.set(replace(status, active=status.active + 1))
                await self._serve_in_time(query, request, sink, started, meter, outcome)
        except asyncio.CancelledError:
            if counted:  # a refusal stays a refusal even if sending it was cut short
                outcome.status = STATUS_CANCELLED
            raise
        except Exception:
            # The caller logs it; the record keeps the counters and the observer's pairs right.
            outcome.status, outcome.error_code = STATUS_FAILED, ERROR_ERROR
            outcome.error_message = "worker: internal error"
            raise
        finally:
            if task is not None:
                self._tasks.discard(task)
            record = self._finish(query, started, meter, outcome, job_key, counted=counted)
        return record

    async def _serve_in_time(
        self,
        query: QueryContext,
        request: HttpRequest,
        sink: AnswerSink,
        started: float,
        meter: AnswerMeter,
        outcome: _Outcome,
    ) -> None:
        try:
            async with asyncio.timeout(_clamp_timeout(query.timeout)):
                await self._run(query, request, sink, started, meter, outcome)
        except TimeoutError:
            outcome.status, outcome.error_code = STATUS_TIMEOUT, ERROR_TIMEOUT
            outcome.error_message = "worker: timeout"
            final = self._final(query, started, meter, None)
            await sink.error(ERROR_TIMEOUT, outcome.error_message, final)

    async def _run(
        self,
        query: QueryContext,
        request: HttpRequest,
        sink: AnswerSink,
        started: float,
        meter: AnswerMeter,
        outcome: _Outcome,
    ) -> None:
        try:
            validate_head(request.method, request.headers)
            body = validate_request(
                request.url,
                request.payload,
                base_model_name(self.model),
                max_body_bytes=self.max_request_bytes,
            )
        except RequestRejected as exc:
            outcome.status, outcome.error_code = STATUS_REJECTED, exc.code
            outcome.error_message = f"worker: invalid http request: {exc.message}"
            await sink.error(
                exc.code, outcome.error_message, self._final(query, started, meter, None)
            )
            return
        backend_timeout = _clamp_timeout(query.timeout) * BACKEND_TIMEOUT_SHARE
        exchange = self._client.request(
            request.method, request.url, request.headers, body, timeout=backend_timeout
        )
        answer_started: float | None = None
        try:
            async with exchange:
                answer_started = self._clock()
                await self._stream(query, sink, started, answer_started, meter, exchange, outcome)
        except BackendError as exc:
            prefix = "http failed" if answer_started is None else "failed to get payload"
            outcome.error_message = f"worker: {prefix}: {exc}"
            timed_out = isinstance(exc, BackendTimeout)
            outcome.error_code = ERROR_TIMEOUT if timed_out else ERROR_ERROR
            outcome.status = STATUS_TIMEOUT if timed_out else STATUS_FAILED
            _log.warning("request %s: %s", hash_request_id(query.request_id)[:12], exc)
            final = self._final(query, started, meter, answer_started)
            await sink.error(outcome.error_code, outcome.error_message, final)

    async def _stream(
        self,
        query: QueryContext,
        sink: AnswerSink,
        started: float,
        answer_started: float,
        meter: AnswerMeter,
        exchange: BackendExchange,
        outcome: _Outcome,
    ) -> None:
        head = exchange.head
        outcome.http_status = head.status
        if not 200 <= head.status < 300:
            outcome.status = STATUS_HTTP_ERROR
            outcome.error_code = head.status
            outcome.error_message = f"backend answered HTTP {head.status}"
        headers = _answer_headers(head.headers, started, self._clock())
        content_type = head.header("content-type") or ""
        meter.set_content_type(content_type)
        if not exchange.has_body:
            final = self._final(query, started, meter, answer_started)
            headers += (("Content-Length", "0"),)
            await sink.head(head.status, head.reason, headers, head.http_version, final)
            return
        await sink.head(
            head.status, head.reason, (*headers, ("Transfer-Encoding", "chunked")), "HTTP/1.1"
        )
        sent = 0
        out = b""
        async for data, last in exchange.body():
            out = meter.feed(data)
            if last:
                out += meter.finish()
                break
            if out:
                sent += len(out)
                await sink.part(out)
        sent += len(out)
        outcome.answer_bytes = sent
        await sink.part(out, self._final(query, started, meter, answer_started))

    def _final(
        self, query: QueryContext, started: float, meter: AnswerMeter, answer_at: float | None
    ) -> FinalInfo:
        now = self._clock()
        debug = None
        if query.enable_debug:
            debug = json.dumps(
                {
                    "type": "worker_stats",
                    "start_time": started,
                    "answer_receive_start_at": answer_at if answer_at is not None else 0.0,
                    "answer_receive_end_at": now,
                }
            )
        with_times = query.proto_version >= 2
        return FinalInfo(
            tokens_used=meter.tokens,
            worker_debug=debug,
            worker_start_time=started if with_times else None,
            worker_end_time=now if with_times else None,
        )

    def _finish(
        self,
        query: QueryContext,
        started: float,
        meter: AnswerMeter,
        outcome: _Outcome,
        job_key: str | None,
        *,
        counted: bool,
    ) -> JobRecord:
        raw: RawTokens = meter.raw
        tokens = meter.tokens
        earned: Nanoton = worker_earnings(tokens, self.billing)
        energy_wh = self._observe_finish(job_key, earned)
        record = JobRecord(
            request_hash=hash_request_id(query.request_id),
            proxy=query.proxy,
            model=base_model_name(self.model),
            status=outcome.status,
            http_status=outcome.http_status,
            error_code=outcome.error_code,
            error_message=outcome.error_message,
            coefficient=query.coefficient,
            prompt_tokens=raw.prompt,
            cached_tokens=raw.cached,
            completion_tokens=raw.completion,
            reasoning_tokens=raw.reasoning,
            tokens=tokens,
            earned_nanotons=earned,
            answer_bytes=outcome.answer_bytes,
            started_at=started,
            finished_at=self._clock(),
            energy_wh=energy_wh,
        )
        self._publish(record, counted=counted)
        if self._jobs is not None:
            self._jobs.add(record)
        _log.info(
            "request %s: %s, %d adjusted tokens",
            record.request_hash[:12],
            record.status,
            tokens.total_tokens_used,
        )
        return record

    def _observe_start(self, query: QueryContext) -> str | None:
        """Tell the observer a job starts; its key, or None when there is none (or it failed)."""
        if self._observer is None:
            return None
        key = f"{hash_request_id(query.request_id)[:12]}#{next(_job_numbers)}"
        try:
            self._observer.job_started(key)
        except Exception as exc:  # metering is a figure on the dashboard, never worth a request
            _log.warning("job %s: energy metering did not start: %s", key, exc)
            return None
        return key

    def _observe_finish(self, key: str | None, earned: Nanoton) -> float | None:
        if self._observer is None or key is None:
            return None
        try:
            energy_wh = self._observer.job_finished(key, earned)
        except Exception as exc:
            _log.warning("job %s: energy metering did not finish: %s", key, exc)
            return None
        if energy_wh is None or not math.isfinite(energy_wh) or energy_wh < 0:
            return None
        return energy_wh

    def _publish(self, record: JobRecord, *, counted: bool) -> None:
        status = self.status.value
        ok = record.status == STATUS_OK
        self.status.set(
            replace(
                status,
                active=status.active - 1 if counted else status.active,
                served=status.served + (1 if ok else 0),
                failed=status.failed + (0 if ok else 1),
                busy_refusals=status.busy_refusals + (0 if counted else 1),
                tokens=_add_tokens(status.tokens, record.tokens),
                earned_nanotons=status.earned_nanotons + record.earned_nanotons,
                last_error=status.last_error if ok else record.error_message,
            )
        )


def _answer_headers(backend: Headers, started: float, now: float) -> Headers:
    """The backend's headers as the reference passes them on, plus its fixed additions.

    Names are compared case-insensitively (the reference compares some exactly and so passes a
    capitalised ``Content-Length`` through, which truncates rewritten answers).
    """
    kept = tuple(pair for pair in backend if pair[0].lower() not in _ANSWER_HEADERS_DROPPED)
    return (
        *kept,
        ("Connection", "Close"),
        ("X-Cocoon-Worker-Start", f"{started:.6f}"),
        ("X-Cocoon-Worker-End", f"{now:.6f}"),
    )


def _add_tokens(a: TokensUsed, b: TokensUsed) -> TokensUsed:
    return TokensUsed(
        a.prompt_tokens_used + b.prompt_tokens_used,
        a.cached_tokens_used + b.cached_tokens_used,
        a.completion_tokens_used + b.completion_tokens_used,
        a.reasoning_tokens_used + b.reasoning_tokens_used,
        a.total_tokens_used + b.total_tokens_used,
    )


def _clamp_timeout(timeout: float) -> float:
    if not math.isfinite(timeout) or timeout <= 0:
        return 0.0
    return min(timeout, _MAX_TIMEOUT)
