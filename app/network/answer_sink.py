"""One query's answer onto a proxy link (``proxy.queryAnswer*Ex``), and worker-wide counters.

:class:`ProxyAnswerSink` implements :class:`app.network.answer.AnswerSink` for proto ≥ 1.
:class:`RequestLedger` is the worker-wide active-request cap and the served/failed/token tallies.
"""

from __future__ import annotations

from collections.abc import Callable

from app.network.answer import FinalInfo, Headers
from app.network.connection import Connection, ConnectionClosedError
from app.network.tl import TLObject, encode, encode_fields


def final_info_tl(final: FinalInfo) -> TLObject:
    """The bare ``proxy.queryFinalInfo`` value for ``final``."""
    used = final.tokens_used
    fields: dict[str, object] = {
        "flags": final.flags,
        "tokens_used": TLObject(
            "tokensUsed",
            {
                "prompt_tokens_used": used.prompt_tokens_used,
                "cached_tokens_used": used.cached_tokens_used,
                "completion_tokens_used": used.completion_tokens_used,
                "reasoning_tokens_used": used.reasoning_tokens_used,
                "total_tokens_used": used.total_tokens_used,
            },
        ),
    }
    if final.worker_debug is not None:
        fields["worker_debug"] = final.worker_debug
    if final.worker_start_time is not None:
        fields["worker_start_time"] = final.worker_start_time
        fields["worker_end_time"] = final.worker_end_time or final.worker_start_time
    return TLObject("proxy.queryFinalInfo", fields)


class ProxyAnswerSink:
    """Sends one query's answer as ``tcp.packet``s; drops everything once the proxy is gone.

    ``final`` is the final info sent (``None`` while running or if the link died first);
    ``failed`` is true once an error was sent or the answer could not be delivered.
    """

    __slots__ = ("_conn", "_done", "_request_id", "failed", "final")

    def __init__(self, conn: Connection, request_id: bytes) -> None:
        self._conn = conn
        self._request_id = request_id
        self._done = False
        self.final: FinalInfo | None = None
        self.failed = False

    async def head(
        self,
        status: int,
        reason: str,
        headers: Headers,
        http_version: str = "HTTP/1.1",
        final: FinalInfo | None = None,
    ) -> None:
        response = TLObject(
            "http.response",
            {
                "http_version": http_version,
                "status_code": status,
                "reason": reason,
                "headers": [TLObject("http.header", {"name": n, "value": v}) for n, v in headers],
                "payload": b"",
            },
        )
        await self._send("proxy.queryAnswerEx", {"answer": encode(response)}, final)

    async def part(self, data: bytes, final: FinalInfo | None = None) -> None:
        await self._send("proxy.queryAnswerPartEx", {"answer": data}, final)

    async def error(self, code: int, message: str, final: FinalInfo) -> None:
        self.failed = True
        await self._send("proxy.queryAnswerErrorEx", {"error_code": code, "error": message}, final)

    async def _send(self, name: str, fields: dict[str, object], final: FinalInfo | None) -> None:
        if self._done:
            return
        fields["request_id"] = self._request_id
        if final is None:
            fields["flags"] = 0
        else:
            self._done = True
            self.final = final
            fields["flags"] = 1
            fields["final_info"] = final_info_tl(final)
        conn = self._conn
        if conn.is_closed:
            self._lost()
            return
        try:
            conn.send_packet(encode_fields(name, fields))
            await conn.drain()
        except ConnectionClosedError:
            self._lost()

    def _lost(self) -> None:
        self._done = True
        self.failed = True
        self.final = None


class RequestLedger:
    """Worker-wide request counters across all proxy links: active, served, failed, tokens.

    The concurrency cap itself belongs to the request server (it answers 602 and records the
    refusal as a job); this only counts what went over the links.
    """

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self.active = 0
        self.served = 0
        self.failed = 0
        self.tokens = 0
        self._on_change = on_change

    def begin(self) -> None:
        self.active += 1
        self._changed()

    def finish(self, final: FinalInfo | None, *, failed: bool) -> None:
        """Count one finished request; tokens are what its final info billed."""
        self.active -= 1
        if failed or final is None:
            self.failed += 1
        else:
            self.served += 1
        if final is not None:
            self.tokens += final.tokens_used.total_tokens_used
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
