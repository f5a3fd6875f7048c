"""One runner-protocol link: framing, the ``tcp.connect`` init, keep-alive, packets and queries.

A :class:`Connection` is an ``asyncio.Protocol``: bytes are decoded right in ``data_received``
(no per-frame task or queue), packets go straight to the handler, queries get futures.
See docs/protocol.md §2.5.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.network.answer import ERROR_PROTOVIOLATION
from app.network.framing import FrameDecoder, FrameEncoder, FrameError
from app.network.peer_info import PeerInfo
from app.network.ratls_cert import PeerAttestation
from app.network.tl import TLError, TLObject, decode, encode, encode_fields

_log = logging.getLogger(__name__)

PacketCallback = Callable[[bytes], None]
QueryCallback = Callable[[bytes], Awaitable[bytes]]

# Queued frames are written at the end of the loop iteration, or at once past this size.
_FLUSH_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Keepalive:
    """Idle timers: ping once after ``ping_after`` s of silence; drop after ``drop_after`` s.

    ``ping_after=None`` never pings (the accepting side of the reference never does).
    """

    ping_after: float | None = 10.0
    drop_after: float = 20.0


DIALER_KEEPALIVE = Keepalive(ping_after=10.0, drop_after=20.0)
LISTENER_KEEPALIVE = Keepalive(ping_after=None, drop_after=60.0)


class ConnectionClosedError(ConnectionError):
    """The link is gone; ``reason`` says why (never contains request data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RemoteQueryError(Exception):
    """The peer answered a query with ``tcp.queryError``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"peer error {code}: {message}")
        self.code = code
        self.message = message


class QueryRejectedError(Exception):
    """Raised by a query handler to answer with ``tcp.queryError(code, message)``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def random_long() -> int:
    """A random signed 64-bit id, as the reference uses for connect, ping and query ids."""
    return int.from_bytes(os.urandom(8), "little", signed=True)


#: How long a closing connection waits for its transport to finish (TLS: the peer's close_notify).
CLOSE_GRACE_S = 2.0


class Connection(asyncio.Protocol):
    """The ``tcp.*`` layer over one stream transport, as dialler (worker) or listener (proxy).

    The dialler sends ``tcp.connect`` as soon as the transport is attached and becomes ready on
    the matching ``tcp.connected``; the listener answers the first frame, which must be
    ``tcp.connect``. Packets arriving before ``ready`` are protocol violations.
    """

    def __init__(
        self,
        *,
        dialer: bool,
        on_packet: PacketCallback,
        on_query: QueryCallback | None = None,
        keepalive: Keepalive | None = None,
        name: str = "peer",
    ) -> None:
        self._dialer = dialer
        self._on_packet = on_packet
        self._on_query = on_query
        self._keepalive = keepalive or (DIALER_KEEPALIVE if dialer else LISTENER_KEEPALIVE)
        self.name = name
        # Set by the router dialler: what the local router attested about the peer.
        self.peer_info: PeerInfo | None = None
        # What a remote router's certificate attested (the direct router leg), else None.
        self.attestation: PeerAttestation | None = None
        # The StreamWriter whose transport this connection took over (the router leg's TLS):
        # asyncio's StreamWriter closes its transport when garbage-collected, so it must live
        # as long as the connection does.
        self.transport_owner: object | None = None
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._decoder = FrameDecoder()
        self._encoder = FrameEncoder()
        self._connect_id = random_long()
        self._is_ready = False
        self.ready: asyncio.Future[None] = self._loop.create_future()
        self.closed: asyncio.Future[str] = self._loop.create_future()
        # Set when the transport is really gone (a TLS close waits for the peer's close_notify).
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._close_reason: str | None = None
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._query_tasks: set[asyncio.Task[None]] = set()
        self._last_rx = self._loop.time()
        self._pinged = False
        self._timer: asyncio.TimerHandle | None = None
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        # Frames queued during one loop iteration go out in one send (see _write).
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._flush_scheduled = False
        # Read by callers that want to see why a handshake never completed.
        self.ready.add_done_callback(_consume_exception)

    # ----------------------------------------------------------------- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # always a stream transport
        self._last_rx = self._loop.time()
        self._arm_timer()
        if self._dialer:
            self._send_tl(TLObject("tcp.connect", {"id": self._connect_id}))

    def data_received(self, data: bytes) -> None:
        if self._close_reason is not None:
            return
        self._last_rx = self._loop.time()
        self._pinged = False
        try:
            payloads = self._decoder.feed(data)
        except FrameError as exc:
            self.close(f"malformed frame: {exc}")
            return
        for payload in payloads:
            if self.is_closed:  # a handler may have closed the link mid-batch
                return
            try:
                self._dispatch(payload)
            except TLError as exc:
                self.close(f"malformed packet: {exc}")
            except Exception:
                # A handler bug closes this link with a reason; it must not kill the loop's
                # transport callback (asyncio would log and abort it less clearly).
                _log.exception("%s: handling a frame failed", self.name)
                self.close("internal error while handling a frame")
        if self._decoder.error is not None:
            self.close(f"malformed frame: {self._decoder.error}")

    def eof_received(self) -> bool | None:
        return None  # let the transport close itself; connection_lost records the reason

    def connection_lost(self, exc: Exception | None) -> None:
        if self._close_reason is None:
            if self._decoder.buffered:
                reason = "peer closed the connection in the middle of a frame"
            elif exc is not None:
                reason = f"connection lost: {exc}"
            else:
                reason = "peer closed the connection"
            self._finish(reason)
        self._release_writers()
        if not self._lost.done():
            self._lost.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._release_writers()

    # ----------------------------------------------------------------- public API
    @property
    def is_ready(self) -> bool:
        return self._is_ready and self._close_reason is None

    @property
    def is_closed(self) -> bool:
        return self._close_reason is not None

    @property
    def close_reason(self) -> str | None:
        return self._close_reason

    def send_packet(self, data: bytes) -> None:
        """Send a boxed application object as ``tcp.packet`` (dropped silently once closed)."""
        self._require_ready()
        self._write(encode_fields("tcp.packet", {"data": data}))

    async def query(self, data: bytes, timeout: float) -> bytes:  # noqa: ASYNC109
        """Send a boxed TL function as ``tcp.query``; return the boxed answer's bytes.

        Raises :class:`RemoteQueryError`, :class:`TimeoutError` or :class:`ConnectionClosedError`.
        """
        self._require_ready()
        query_id = random_long()
        while query_id in self._pending:
            query_id = random_long()
        future: asyncio.Future[bytes] = self._loop.create_future()
        self._pending[query_id] = future
        try:
            self._send_tl(TLObject("tcp.query", {"id": query_id, "data": data}))
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(query_id, None)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if self._close_reason is not None:
            raise ConnectionClosedError(self._close_reason)
        if not self._write_paused:
            return
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter
        if self._close_reason is not None:
            raise ConnectionClosedError(self._close_reason)

    def close(self, reason: str) -> None:
        """Close now (idempotent); the first reason given is the one kept."""
        if self._close_reason is not None:
            return
        self._flush()  # what was sent before closing still goes out (e.g. a queryError)
        self._finish(reason)
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> str:
        """Wait until closed, every query handler task has ended and the transport has let go
        of its socket (a TLS peer that never answers our close_notify gets cut off after
        :data:`CLOSE_GRACE_S`); returns the reason."""
        reason = await asyncio.shield(self.closed)
        while self._query_tasks:
            await asyncio.gather(*self._query_tasks, return_exceptions=True)
        if self._transport is not None and not self._lost.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._lost), CLOSE_GRACE_S)
            except TimeoutError:
                self._transport.abort()
                await asyncio.shield(self._lost)
        return reason

    async def aclose(self, reason: str = "closed locally") -> None:
        self.close(reason)
        await self.wait_closed()

    # ----------------------------------------------------------------- internals
    def _require_ready(self) -> None:
        if self._close_reason is not None:
            raise ConnectionClosedError(self._close_reason)
        if not self._is_ready:
            raise ConnectionClosedError("connection is not ready yet")

    def _write(self, payload: bytes) -> None:
        try:
            frame = self._encoder.encode(payload)
        except FrameError:
            # The reference drops oversized sends with a log line instead of killing the link.
            _log.warning("%s: dropped an outgoing frame of %d bytes", self.name, len(payload))
            return
        if self._transport is None:
            return
        # One send per loop iteration instead of one per frame: a streamed answer's head and
        # parts, or several requests' parts, often become ready in the same iteration. Past
        # _FLUSH_BYTES it goes out at once, so the transport's flow control (drain) sees it.
        self._out.append(frame)
        self._out_bytes += len(frame)
        if self._out_bytes >= _FLUSH_BYTES:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out, self._out = self._out, []
        self._out_bytes = 0
        if not out or self._transport is None or self._transport.is_closing():
            return
        self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _send_tl(self, obj: TLObject) -> None:
        if self._close_reason is None and self._transport is not None:
            self._write(encode(obj))

    def _dispatch(self, payload: bytes) -> None:
        packet = decode(payload, expect="tcp.Packet")
        name = packet.name
        if not self._is_ready:
            self._handle_init(packet)
        elif name == "tcp.packet":
            self._on_packet(packet["data"])
        elif name == "tcp.queryAnswer":
            self._resolve(packet["id"], packet["data"], None)
        elif name == "tcp.queryError":
            self._resolve(packet["id"], None, RemoteQueryError(packet["code"], packet["message"]))
        elif name == "tcp.query":
            self._start_query(packet["id"], packet["data"])
        elif name == "tcp.ping":
            self._send_tl(TLObject("tcp.pong", {"id": packet["id"]}))
        # tcp.pong only resets the idle timer; stray tcp.connect/connected are ignored (reference).

    def _handle_init(self, packet: TLObject) -> None:
        if self._dialer:
            if packet.name != "tcp.connected":
                self.close(f"expected tcp.connected as the first frame, got {packet.name}")
                return
            if packet["id"] != self._connect_id:
                self.close("tcp.connected echoed a different id")
                return
        else:
            if packet.name != "tcp.connect":
                self.close(f"expected tcp.connect as the first frame, got {packet.name}")
                return
            self._send_tl(TLObject("tcp.connected", {"id": packet["id"]}))
        self._is_ready = True
        self.ready.set_result(None)

    def _resolve(self, query_id: int, data: bytes | None, error: Exception | None) -> None:
        future = self._pending.get(query_id)
        if future is None or future.done():
            return  # a late answer to a query that already timed out
        if error is not None:
            future.set_exception(error)
        elif data is not None:
            future.set_result(data)

    def _start_query(self, query_id: int, data: bytes) -> None:
        task = self._loop.create_task(self._answer_query(query_id, data))
        self._query_tasks.add(task)
        task.add_done_callback(self._query_tasks.discard)

    async def _answer_query(self, query_id: int, data: bytes) -> None:
        if self._on_query is None:
            code, message = ERROR_PROTOVIOLATION, "queries are not accepted here"
        else:
            try:
                answer = await self._on_query(data)
            except QueryRejectedError as exc:
                code, message = exc.code, exc.message
            except TLError as exc:
                code, message = ERROR_PROTOVIOLATION, f"malformed query: {exc}"
            except ConnectionClosedError:
                return
            else:
                self._send_tl(TLObject("tcp.queryAnswer", {"id": query_id, "data": answer}))
                return
        self._send_tl(
            TLObject("tcp.queryError", {"id": query_id, "code": code, "message": message})
        )

    def _arm_timer(self) -> None:
        ka = self._keepalive
        due = self._last_rx + ka.drop_after
        if ka.ping_after is not None and not self._pinged:
            due = min(due, self._last_rx + ka.ping_after)
        self._timer = self._loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._close_reason is not None:
            return
        ka = self._keepalive
        silent = self._loop.time() - self._last_rx
        if silent >= ka.drop_after:
            self.close(f"no data from the peer for {ka.drop_after:g} s")
            return
        if (
            ka.ping_after is not None
            and not self._pinged
            and self._is_ready
            and silent >= ka.ping_after
        ):
            self._pinged = True
            self._send_tl(TLObject("tcp.ping", {"id": random_long()}))
        self._arm_timer()

    def _finish(self, reason: str) -> None:
        self._close_reason = reason
        _log.debug("%s: connection closed: %s", self.name, reason)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        error = ConnectionClosedError(reason)
        if not self.ready.done():
            self.ready.set_exception(error)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        for task in self._query_tasks:
            task.cancel()
        if not self.closed.done():
            self.closed.set_result(reason)
        self._release_writers()

    def _release_writers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def _consume_exception(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
