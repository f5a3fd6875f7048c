"""The worker's session with one proxy: dial, handshake, serve ``runQueryEx``, poll payments.

One :class:`ProxySession` lives for one TCP connection; :class:`~app.network.worker.CocoonWorker`
re-dials with a new session. docs/protocol.md §4, §5.4, §6.3.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from app.core.observable import Observable
from app.network.answer import (
    ERROR_ERROR,
    ERROR_PROTOVIOLATION,
    ZERO_TOKENS,
    FinalInfo,
    HttpRequest,
    QueryContext,
)
from app.network.answer_sink import ProxyAnswerSink, RequestLedger
from app.network.connection import (
    DIALER_KEEPALIVE,
    Connection,
    ConnectionClosedError,
    Keepalive,
    PacketCallback,
    RemoteQueryError,
)
from app.network.proxy_handshake import (
    HandshakeError,
    accept_connected,
    compare_balance,
    connect_to_proxy,
    extended_compare_balance,
)
from app.network.proxy_payments import (
    PaymentBook,
    ProxyPayments,
    ProxyRefusedError,
    VoucherRegressionError,
)
from app.network.tl import TLError, TLObject, decode, encode
from app.network.worker_config import ProxyAddress, WorkerConfig

_log = logging.getLogger(__name__)

Dialer = Callable[[ProxyAddress, PacketCallback, Keepalive], Awaitable[Connection]]


class RequestServing(Protocol):
    """What the session needs from :class:`~app.network.request_server.RequestServer`.

    ``serve`` answers through the sink and never raises for bad requests or backend failures;
    it also enforces the worker-wide ``max_active_requests`` cap (602 "too many active queries").
    """

    async def serve(self, query: QueryContext, request: HttpRequest, sink: Any) -> object: ...


@dataclass(frozen=True, slots=True)
class SessionTimers:
    """Protocol timers (reference values); tests shrink them."""

    handshake_timeout: float = 30.0
    payment_status_timeout: float = 60.0
    payment_status_every: tuple[float, float] = (10.0, 20.0)
    keepalive: Keepalive = DIALER_KEEPALIVE


@dataclass(frozen=True, slots=True)
class SessionState:
    """One proxy link as the UI shows it. ``phase``: connecting, handshake, ready or closed."""

    address: str
    phase: str = "connecting"
    proxy_sc_address: str = ""
    proto_version: int = 0
    close_reason: str = ""
    # Hex SHA-256 image hash the local router attested for the proxy (all zeros without TDX);
    # empty on direct connections.
    peer_image_hash: str = ""
    # Why this proxy gets no new work from us (it owes more than the exposure cap), or "".
    hold_reason: str = ""
    # The proxy router's attestation on the direct router leg ("" on other transports).
    peer_attestation: str = ""


class ProxySession:
    """Dials ``target``, runs the worker side of the handshake and serves until the link closes."""

    def __init__(
        self,
        target: ProxyAddress,
        *,
        config: WorkerConfig,
        server: RequestServing,
        payments: PaymentBook,
        ledger: RequestLedger,
        dial: Dialer,
        enabled: bool = True,
        coefficient: int | None = None,
        timers: SessionTimers | None = None,
    ) -> None:
        self.target = target
        self._config = config
        self._server = server
        self._book = payments
        self._ledger = ledger
        self._dial = dial
        self._timers = timers or SessionTimers()
        self._enabled = enabled
        self._coefficient = config.coefficient if coefficient is None else coefficient
        self._conn: Connection | None = None
        self._dialing: asyncio.Future[Connection] | None = None
        self._close_requested: str | None = None
        self._serving = False
        self._proto = 0
        self._payments: ProxyPayments | None = None
        self._requests: set[asyncio.Task[None]] = set()
        self.state: Observable[SessionState] = Observable(SessionState(str(target)))

    @property
    def is_ready(self) -> bool:
        return self._serving and self._conn is not None and self._conn.is_ready

    # ----------------------------------------------------------------- lifecycle
    async def run(self) -> str:
        """Serve until the connection ends; returns why (never raises but ``CancelledError``)."""
        conn = await self._connect()
        if isinstance(conn, str):
            return self._closed(conn)
        self._conn = conn
        stop = self._stop_reason()
        if stop is not None:
            conn.close(stop)
        poller: asyncio.Task[None] | None = None
        try:
            peer = conn.peer_info
            image = peer.image_hash.hex() if peer is not None else ""
            self.state.set(
                replace(
                    self.state.value,
                    phase="handshake",
                    peer_image_hash=image,
                    peer_attestation=describe_attestation(conn),
                )
            )
            if await self._try_handshake(conn):
                poller = asyncio.create_task(self._poll_payments(conn))
            reason = await asyncio.shield(conn.closed)
        finally:
            conn.close("session stopped")
            self._serving = False
            tasks = [*self._requests, *([poller] if poller else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await conn.wait_closed()
        return self._closed(reason)

    def _stop_reason(self) -> str | None:
        return self._close_requested

    async def _connect(self) -> Connection | str:
        """The dialled connection, or why there is none (a refusal, or :meth:`close` meanwhile)."""
        stop = self._stop_reason()
        if stop is not None:
            return stop
        dial = asyncio.ensure_future(
            self._dial(self.target, self._on_packet, self._timers.keepalive)
        )
        self._dialing = dial
        try:
            return await dial
        except (OSError, TimeoutError, ValueError) as exc:
            return f"cannot connect: {str(exc) or type(exc).__name__}"
        except asyncio.CancelledError:
            stop = self._stop_reason()
            if stop is None or not dial.cancelled():
                raise  # the session task itself was cancelled
            return stop
        finally:
            self._dialing = None

    async def _try_handshake(self, conn: Connection) -> bool:
        """Run the handshake; on failure close ``conn`` with the reason and return False."""
        try:
            await self._handshake(conn)
        except HandshakeError as exc:
            conn.close(f"bad handshake answer: {exc}")
        except RemoteQueryError as exc:
            conn.close(f"proxy refused the handshake: {exc.message}")
        except TimeoutError:
            conn.close("handshake timed out")
        except ProxyRefusedError as exc:
            conn.close(f"not working for this proxy: {exc}")
        except (ConnectionClosedError, TLError) as exc:
            conn.close(f"handshake failed: {exc}")
        else:
            return True
        return False

    def close(self, reason: str) -> None:
        """End the session (idempotent): a dial in progress is abandoned, a link is closed."""
        if self._close_requested is None:
            self._close_requested = reason
        if self._conn is not None:
            self._conn.close(reason)
        elif self._dialing is not None:
            self._dialing.cancel()

    def set_enabled(self, enabled: bool) -> None:
        """Tell the proxy (``worker.enabledDisabled``) when availability changes."""
        if enabled == self._enabled:
            return
        was = self._available
        self._enabled = enabled
        self._announce(was)

    @property
    def _available(self) -> bool:
        """Whether this proxy may route requests here: enabled, and it owes less than the cap."""
        return self._enabled and not self.state.value.hold_reason

    def _announce(self, was: bool) -> None:
        if self.is_ready and self._available != was:
            disabled = 0 if self._available else 1
            self._send(TLObject("worker.enabledDisabled", {"disabled": disabled}))

    def _check_exposure(self) -> None:
        """Stop taking work from a proxy that owes more than the user's cap (and say so)."""
        if self._payments is None:
            return
        reason = self._book.over_cap(self._payments.account)
        if reason != self.state.value.hold_reason:
            was = self._available
            self.state.set(replace(self.state.value, hold_reason=reason))
            if reason:
                _log.warning("proxy %s: %s", self.target, reason)
            self._announce(was)

    def set_coefficient(self, coefficient: int) -> None:
        """Tell the proxy (``worker.newCoefficient``) the new price coefficient ×1000."""
        if coefficient == self._coefficient:
            return
        self._coefficient = coefficient
        if self.is_ready:
            self._send(TLObject("worker.newCoefficient", {"new_coefficient": coefficient}))

    # ----------------------------------------------------------------- handshake
    async def _handshake(self, conn: Connection) -> None:
        answer = await self._query(
            conn, connect_to_proxy(self._config, self._coefficient), "worker.ConnectedToProxy"
        )
        proxy = accept_connected(answer, is_test=self._config.is_test)
        self._proto = proxy.proto_version
        payments = self._book.open(
            proxy_sc=proxy.proxy_sc_address,
            proxy_public_key=proxy.public_key,
            worker_sc=proxy.worker_sc_address,
            owner=self._config.owner_address,
        )
        self._payments = payments
        self._check_exposure()
        balance = payments.account
        compare = await self._query(
            conn, compare_balance(balance), "worker.CompareBalanceWithProxyResult"
        )
        signed = compare["signed_payment"]
        voucher = payments.apply(signed, None, None, strict=False)
        # An empty payment means the proxy has signed nothing for us; a forged one says nothing.
        signed_tokens = voucher.tokens if voucher is not None else None
        if signed.name == "proxy.signedPaymentEmpty":
            signed_tokens = 0
        payments.check_handshake(signed_tokens, compare["tokens_committed_to_db"])
        payments.apply(
            signed,
            compare["tokens_committed_to_db"],
            compare["max_tokens"],
            strict=False,
        )
        if compare["error_code"] != 0:
            await self._query(
                conn,
                extended_compare_balance(balance),
                "worker.ExtendedCompareBalanceWithProxyResult",
            )
        # The proxy may route a request right behind its answer: serve from the moment we ask.
        self._serving = True
        await self._query(
            conn,
            TLObject("worker.proxyHandshakeComplete", {"is_disabled": not self._available}),
            "worker.HandshakeCompleted",
        )
        self.state.set(
            replace(
                self.state.value,
                phase="ready",
                proxy_sc_address=proxy.proxy_sc_address,
                proto_version=self._proto,
            )
        )
        _log.info("proxy %s: ready (proto %d)", self.target, self._proto)

    async def _query(self, conn: Connection, function: TLObject, expect: str) -> TLObject:
        raw = await conn.query(encode(function), self._timers.handshake_timeout)
        return decode(raw, expect=expect)

    # ----------------------------------------------------------------- steady state
    def _on_packet(self, data: bytes) -> None:
        if not self._serving:
            return  # the reference drops everything before the handshake completes
        try:
            obj = decode(data)
        except TLError as exc:
            self.close(f"malformed packet from the proxy: {exc}")
            return
        name = obj.name
        if name == "proxy.runQueryEx":
            self._apply_balance(obj["signed_payment"], None, None, strict=False)
            self._start_request(obj)
        elif name == "proxy.workerRequestPayment":
            self._apply_balance(obj["signed_payment"], obj["db_tokens"], obj["max_tokens"])
            if self._payments is not None:
                self._payments.billed(obj["request_id"], obj["request_tokens"], obj["max_tokens"])
        elif name in ("proxy.signedPayment", "proxy.signedPaymentEmpty"):
            self._apply_balance(obj, None, None, strict=False)
        else:
            _log.debug("proxy %s: ignored %s", self.target, name)

    def _apply_balance(
        self,
        signed: TLObject,
        db_tokens: int | None,
        max_tokens: int | None,
        *,
        strict: bool = True,
    ) -> None:
        """Keep the best voucher and counters.

        A lower report is a reason to reconnect only when ``strict`` (``workerRequestPayment``,
        as in the reference); vouchers riding on requests or polled status may be older than one
        already applied, and handshake numbers cannot be fixed by re-dialling: those are just
        not kept.
        """
        if self._payments is None:
            return
        try:
            self._payments.apply(signed, db_tokens, max_tokens, strict=strict)
        except VoucherRegressionError as exc:
            self.close(f"proxy reported a lower balance ({exc}); reconnecting")
            return
        self._check_exposure()

    def _start_request(self, obj: TLObject) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(obj))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _serve(self, obj: TLObject) -> None:
        if self._conn is None:
            return
        started = time.time()
        query = QueryContext(
            request_id=obj["request_id"],
            coefficient=obj["coefficient"],
            timeout=obj["timeout"],
            proto_version=self._proto,
            enable_debug=bool(obj["flags"] & 1 and obj.get("enable_debug", False)),
            proxy=str(self.target),
        )
        sink = ProxyAnswerSink(self._conn, query.request_id)
        self._ledger.begin()
        try:
            try:
                request = parse_http_request(obj["query"])
            except TLError as exc:
                await sink.error(
                    ERROR_PROTOVIOLATION,
                    f"worker: invalid http request: {exc}",
                    self._empty_final(started),
                )
                return
            try:
                await self._server.serve(query, request, sink)
            except Exception:
                # A bug below must cost one request, not the link or a silent proxy-side hang.
                _log.exception("proxy %s: serving a request failed", self.target)
                await sink.error(ERROR_ERROR, "worker: internal error", self._empty_final(started))
        finally:
            self._ledger.finish(sink.final, failed=sink.failed)

    def _empty_final(self, started: float) -> FinalInfo:
        if self._proto >= 2:
            return FinalInfo(ZERO_TOKENS, worker_start_time=started, worker_end_time=time.time())
        return FinalInfo(ZERO_TOKENS)

    async def _poll_payments(self, conn: Connection) -> None:
        low, high = self._timers.payment_status_every
        request = encode(TLObject("worker.updatePaymentStatus", {}))
        while True:
            await asyncio.sleep(random.uniform(low, high))  # noqa: S311 - jitter, not crypto
            try:
                raw = await conn.query(request, self._timers.payment_status_timeout)
                status = decode(raw, expect="worker.PaymentStatus")
            except ConnectionClosedError:
                return
            except (RemoteQueryError, TimeoutError, TLError) as exc:
                conn.close(f"payment status failed: {str(exc) or 'timeout'}")
                return
            # The answer may have been overtaken by a workerRequestPayment applied meanwhile.
            self._apply_balance(
                status["signed_payment"], status["db_tokens"], status["max_tokens"], strict=False
            )

    def _send(self, obj: TLObject) -> None:
        if self._conn is not None and self._conn.is_ready:
            self._conn.send_packet(encode(obj))

    def _closed(self, reason: str) -> str:
        self.state.set(replace(self.state.value, phase="closed", close_reason=reason))
        return reason


def describe_attestation(conn: Connection) -> str:
    """The remote router's attestation in words, for the status (empty when not dialled so)."""
    seen = conn.attestation
    if seen is None:
        return ""
    if seen.attested:
        return f"{seen.policy}: quote bound to key {seen.public_key_hex[:16]}…"
    return f"{seen.policy}: no attestation (test mode), key {seen.public_key_hex[:16]}…"


def parse_http_request(raw: bytes) -> HttpRequest:
    """``runQueryEx.query`` (a boxed ``http.request``) as the request server's value type."""
    obj = decode(raw, expect="http.request")
    return HttpRequest(
        method=obj["method"],
        url=obj["url"],
        http_version=obj["http_version"],
        headers=tuple((h["name"], h["value"]) for h in obj["headers"]),
        payload=obj["payload"],
    )
