"""The serving contract: a query's context, its HTTP request, the answer sink and the final info.

Plain values mapping 1:1 onto the TL objects of a query (``proxy.runQueryEx``, ``http.request``,
``proxy.queryAnswer*Ex``, ``proxy.queryFinalInfo``, ``tokensUsed``), with the TL field names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Re-exported: the answer objects carry it, and callers know it from here.
from app.core.billing import TokensUsed as TokensUsed

# (name, value) pairs in wire order; ``http.header name:string value:string``.
Headers = tuple[tuple[str, str], ...]

# TON error codes (ton/common/errorcode.h) used in ``proxy.queryAnswerErrorEx.error_code``.
ERROR_FAILURE = 601
ERROR_ERROR = 602
ERROR_PROTOVIOLATION = 621
ERROR_TIMEOUT = 652
ERROR_CANCELLED = 653


@dataclass(frozen=True, slots=True)
class QueryContext:
    """What ``proxy.runQueryEx`` says about a query, besides the HTTP request itself.

    ``request_id`` is the proxy's 32-byte ``int256``, echoed in every answer. ``coefficient`` is the
    price coefficient x1000 the proxy sent (the worker bills with this one, not its own).
    ``timeout`` is in seconds. ``proto_version`` is the version negotiated with this proxy (0, 1 or
    2). ``enable_debug`` is ``(flags & 1) and enable_debug``. ``proxy`` names the proxy for job
    records and logs (e.g. its address); it is never sent anywhere.
    """

    request_id: bytes
    coefficient: int
    timeout: float
    proto_version: int = 2
    enable_debug: bool = False
    proxy: str = ""

    def __repr__(self) -> str:
        return (
            f"QueryContext(request_id={self.request_id.hex()[:16]}…, "
            f"coefficient={self.coefficient}, "
            f"timeout={self.timeout}, proto_version={self.proto_version}, "
            f"enable_debug={self.enable_debug}, proxy={self.proxy!r})"
        )


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """``http.request method:string url:string http_version:string headers:(vector http.header)
    payload:bytes`` — the client's request as the proxy forwarded it."""

    method: str
    url: str
    http_version: str
    headers: Headers
    payload: bytes

    def __repr__(self) -> str:  # the payload is a prompt: never print it
        return (
            f"HttpRequest(method={self.method!r}, url={self.url!r}, "
            f"http_version={self.http_version!r}, headers={len(self.headers)}, "
            f"payload={len(self.payload)} bytes)"
        )


ZERO_TOKENS = TokensUsed()


@dataclass(frozen=True, slots=True)
class FinalInfo:
    """``proxy.queryFinalInfo``: flags bit 0 ⇔ ``worker_debug`` is set, bit 1 ⇔ the times are set.

    The times are Unix seconds; they are set for proto ≥ 2 only, ``worker_debug`` only when the
    proxy asked for debug. For proto 0 only ``tokens_used`` is sent (in the old answer objects).
    """

    tokens_used: TokensUsed
    worker_debug: str | None = None
    worker_start_time: float | None = None
    worker_end_time: float | None = None

    @property
    def flags(self) -> int:
        return (1 if self.worker_debug is not None else 0) | (
            2 if self.worker_start_time is not None else 0
        )


class AnswerSink(Protocol):
    """Where :class:`~app.network.request_server.RequestServer` sends one query's answer.

    Calls come in this order only: ``head`` once, then ``part`` any number of times, the last one
    with ``final`` set; or ``error`` (with its final info) at any point, after which nothing else
    comes. If ``head`` is called with ``final`` set, the body is empty and the answer is complete
    (``proxy.queryAnswerEx`` with ``flags = 1``). ``head``'s headers already include the
    ``X-Cocoon-Worker-*`` timing headers and either ``Transfer-Encoding: chunked`` or
    ``Content-Length``. Sinks apply back-pressure by awaiting; they must not raise for a proxy that
    went away (they drop the answer instead).
    """

    async def head(
        self,
        status: int,
        reason: str,
        headers: Headers,
        http_version: str = "HTTP/1.1",
        final: FinalInfo | None = None,
    ) -> None:
        """``proxy.queryAnswerEx`` carrying a boxed ``http.response`` with an empty payload."""

    async def part(self, data: bytes, final: FinalInfo | None = None) -> None:
        """``proxy.queryAnswerPartEx``; ``final`` set means ``flags = 1`` and this is the end."""

    async def error(self, code: int, message: str, final: FinalInfo) -> None:
        """``proxy.queryAnswerErrorEx`` (``flags = 1``); the query is over."""
