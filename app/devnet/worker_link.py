"""The test-mode proxy's side of one worker connection: handshake checks, answers, requests.

Mirrors ``ProxyInboundWorkerConnection`` and ``ProxyRunningRequest`` of the reference
(docs/protocol.md §4.1, §4.3, §5.4) closely enough that a worker which works here works against
the real proxy.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from app.network.answer import ERROR_PROTOVIOLATION, Headers
from app.network.connection import Connection, QueryRejectedError
from app.network.request_validation import base_model_name
from app.network.tl import TLError, TLObject, decode, encode
from app.network.worker_config import MAX_COEFFICIENT
from app.wallet.chain import raw_address

if TYPE_CHECKING:
    from app.devnet.test_proxy import TestProxy

_log = logging.getLogger(__name__)

PROXY_MAX_PROTO = 2


@dataclass(frozen=True, slots=True)
class AnswerHead:
    """The worker's ``http.response`` (status line and headers; the body follows as chunks)."""

    http_version: str
    status: int
    reason: str
    headers: Headers


@dataclass(frozen=True, slots=True)
class AnswerChunk:
    data: bytes


@dataclass(frozen=True, slots=True)
class AnswerEnd:
    """The answer is complete; ``tokens`` is what the final info billed (adjusted, total)."""

    tokens: int


@dataclass(frozen=True, slots=True)
class AnswerFailed:
    code: int
    message: str


AnswerEvent = AnswerHead | AnswerChunk | AnswerEnd | AnswerFailed


class RunningQuery:
    """One routed request: the worker's answer events arrive on :meth:`events`."""

    def __init__(self, link: WorkerLink, request_id: bytes, started: float) -> None:
        self.link = link
        self.request_id = request_id
        self.started = started
        self._queue: asyncio.Queue[AnswerEvent] = asyncio.Queue()
        self.got_head = False
        self.done = False

    def push(self, event: AnswerEvent) -> None:
        if not self.done:
            self._queue.put_nowait(event)

    async def events(self) -> AsyncIterator[AnswerEvent]:
        """Yields until (and including) an :class:`AnswerEnd` or :class:`AnswerFailed`."""
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, AnswerEnd | AnswerFailed):
                return

    def abandon(self) -> None:
        """The client went away or timed out: forget the request (late answers are dropped)."""
        self.link.forget(self)


class WorkerLink:
    """One connected worker, from ``worker.connectToProxy`` to disconnect."""

    def __init__(self, proxy: TestProxy) -> None:
        self._proxy = proxy
        self.conn: Connection | None = None
        self.step = "connect"
        self.owner = ""
        self.owner_raw = ""  # the proxy keys tallies by the raw form
        self.model = ""
        self.coefficient = 0
        self.proxy_cnt = 1
        self.max_active = 1
        self.proto = 0
        self.enabled = False
        self.worker_sc_address = ""
        self.running: dict[bytes, RunningQuery] = {}
        self.average_time = 1.0

    @property
    def base_model(self) -> str:
        return base_model_name(self.model)

    @property
    def capacity(self) -> int:
        """Per-connection share of the worker's cap, as the reference computes it."""
        return math.ceil(self.max_active / self.proxy_cnt)

    @property
    def ready(self) -> bool:
        return self.step == "ready" and self.conn is not None and self.conn.is_ready

    def can_take(self, model: str) -> bool:
        return (
            self.ready
            and self.enabled
            and self.base_model == model
            and len(self.running) < self.capacity
        )

    # ----------------------------------------------------------------- handshake (queries)
    async def on_query(self, data: bytes) -> bytes:
        fn = decode(data)
        handler: dict[str, Callable[[TLObject], TLObject]] = {
            "worker.connectToProxy": self._connect,
            "worker.compareBalanceWithProxy": self._compare,
            "worker.extendedCompareBalanceWithProxy": self._extended_compare,
            "worker.proxyHandshakeComplete": self._complete,
            "worker.updatePaymentStatus": self._payment_status,
        }
        method = handler.get(fn.name)
        if method is None:
            return self._reject_and_close(f"unexpected query {fn.name}")
        return encode(method(fn))

    def _reject_and_close(self, reason: str) -> NoReturn:
        # The reference drops the connection on any handshake violation; answer first, then close.
        loop = asyncio.get_running_loop()
        if self.conn is not None:
            loop.call_soon(self.conn.close, reason)
        raise QueryRejectedError(ERROR_PROTOVIOLATION, reason)

    def _expect(self, step: str, name: str) -> None:
        if self.step != step:
            self._reject_and_close(f"{name} out of order (at step {self.step})")

    def _connect(self, fn: TLObject) -> TLObject:
        self._expect("connect", "connectToProxy")
        params = fn["params"]
        flags = params["flags"]
        proxy = self._proxy
        if not flags & 1:
            self._reject_and_close("too old worker")
        if bool(params["is_test"]) != proxy.is_test:
            self._reject_and_close("is_test mismatch")
        if not params["model"]:
            self._reject_and_close("empty model")
        if not 0 <= params["coefficient"] <= MAX_COEFFICIENT:
            self._reject_and_close("bad coefficient")
        if params["max_active_requests"] < 1 or params["proxy_cnt"] < 1:
            self._reject_and_close("bad capacity")
        low, high = (
            (params["min_proto_version"], params["max_proto_version"]) if flags & 2 else (0, 0)
        )
        if low > PROXY_MAX_PROTO or high < low:
            self._reject_and_close("no common protocol version")
        try:
            self.owner_raw = raw_address(params["worker_owner_address"])
        except Exception:  # pytoniq_core raises several types for a malformed address
            self._reject_and_close("bad worker owner address")
        self.owner = params["worker_owner_address"]
        self.model = params["model"]
        self.coefficient = params["coefficient"]
        self.proxy_cnt = params["proxy_cnt"]
        self.max_active = params["max_active_requests"]
        self.proto = min(high, PROXY_MAX_PROTO)
        self.worker_sc_address = proxy.worker_sc_address(self.owner)
        self.step = "compare"
        return TLObject(
            "worker.connectedToProxy",
            {
                "params": TLObject(
                    "proxy.params",
                    {
                        "flags": 1 | (2 if self.proto > 0 else 0),
                        "proxy_public_key": proxy.public_key,
                        "proxy_owner_address": proxy.owner_address,
                        "proxy_sc_address": proxy.sc_address,
                        "is_test": proxy.is_test,
                        "proto_version": self.proto,
                    },
                ),
                "worker_sc_address": self.worker_sc_address,
            },
        )

    def _compare(self, fn: TLObject) -> TLObject:
        self._expect("compare", "compareBalanceWithProxy")
        tally = self._proxy.tally(self.owner)
        if (
            fn["tokens_committed_to_blockchain"] > tally.tokens_committed_to_blockchain
            or fn["tokens_committed_to_db"] > tally.tokens_committed_to_db
        ):
            # The reference CHECK-aborts here; a test proxy refuses the worker instead.
            self._reject_and_close("worker claims more tokens than this proxy knows")
        self.step = "extended" if fn["max_tokens"] > tally.max_tokens else "complete"
        return TLObject(
            "worker.compareBalanceWithProxyResult",
            {
                "signed_payment": self._proxy.voucher_for(self.owner),
                "tokens_committed_to_db": tally.tokens_committed_to_db,
                "max_tokens": tally.max_tokens,
                "error_code": 0 if self.step == "complete" else 1,
            },
        )

    def _extended_compare(self, fn: TLObject) -> TLObject:
        self._expect("extended", "extendedCompareBalanceWithProxy")
        self.step = "complete"
        return TLObject("worker.extendedCompareBalanceWithProxyResult", {"error_code": 0})

    def _complete(self, fn: TLObject) -> TLObject:
        self._expect("complete", "proxyHandshakeComplete")
        self.enabled = not fn["is_disabled"]
        self.step = "ready"
        _log.info("test proxy: worker %s ready (model %s)", self.owner, self.model)
        return TLObject("worker.proxyHandshakeCompleted", {})

    def _payment_status(self, fn: TLObject) -> TLObject:
        self._expect("ready", "updatePaymentStatus")
        tally = self._proxy.tally(self.owner)
        return TLObject(
            "worker.paymentStatus",
            {
                "signed_payment": self._proxy.voucher_for(self.owner),
                "db_tokens": tally.tokens_committed_to_db,
                "max_tokens": tally.max_tokens,
            },
        )

    # ----------------------------------------------------------------- steady state (packets)
    def on_packet(self, data: bytes) -> None:
        if self.step != "ready":
            return  # the reference ignores worker packets before the handshake completes
        try:
            obj = decode(data)
        except TLError as exc:
            self.close(f"malformed packet from the worker: {exc}")
            return
        name = obj.name
        if name in ("proxy.queryAnswerEx", "proxy.queryAnswerPartEx", "proxy.queryAnswerErrorEx"):
            self._on_answer(name, obj)
        elif name == "worker.enabledDisabled":
            self.enabled = obj["disabled"] == 0
        elif name == "worker.newCoefficient":
            if obj["new_coefficient"] < 0:
                self.close("negative coefficient")
            else:
                self.coefficient = obj["new_coefficient"]

    def _on_answer(self, name: str, obj: TLObject) -> None:
        query = self.running.get(obj["request_id"])
        if query is None:
            return  # an answer to a request the client already abandoned
        if name == "proxy.queryAnswerErrorEx":
            query.push(AnswerFailed(obj["error_code"], obj["error"]))
            self._finish(query, obj)
            return
        if name == "proxy.queryAnswerEx":
            if query.got_head:
                self._fail(query, "out of order answer parts")
                return
            query.got_head = True
            response = decode(obj["answer"], expect="http.Response")
            query.push(
                AnswerHead(
                    response["http_version"],
                    response["status_code"],
                    response["reason"],
                    tuple((h["name"], h["value"]) for h in response["headers"]),
                )
            )
            if response["payload"]:
                query.push(AnswerChunk(response["payload"]))
        else:
            if not query.got_head:
                self._fail(query, "out of order answer parts")
                return
            if obj["answer"]:
                query.push(AnswerChunk(obj["answer"]))
        if obj["flags"] & 1:
            self._finish(query, obj)

    def _finish(self, query: RunningQuery, obj: TLObject) -> None:
        final = obj.get("final_info") if obj["flags"] & 1 else None
        tokens = final["tokens_used"]["total_tokens_used"] if final is not None else 0
        if query.done:
            return
        if not obj.name.endswith("ErrorEx"):
            query.push(AnswerEnd(tokens))
        query.done = True
        self.running.pop(query.request_id, None)
        elapsed = asyncio.get_running_loop().time() - query.started
        self.average_time = 0.9 * self.average_time + 0.1 * elapsed
        self._proxy.bill(self, query.request_id, tokens)

    def _fail(self, query: RunningQuery, message: str) -> None:
        query.push(AnswerFailed(502, message))
        query.done = True
        self.running.pop(query.request_id, None)

    def forget(self, query: RunningQuery) -> None:
        query.done = True
        self.running.pop(query.request_id, None)

    def send(self, obj: TLObject) -> None:
        if self.conn is not None and self.conn.is_ready:
            self.conn.send_packet(encode(obj))

    def close(self, reason: str) -> None:
        if self.conn is not None:
            self.conn.close(reason)

    def closed(self, reason: str) -> None:
        """The connection ended: every request on it fails."""
        self.step = "closed"
        for query in list(self.running.values()):
            self._fail(query, f"worker disconnected: {reason}")
