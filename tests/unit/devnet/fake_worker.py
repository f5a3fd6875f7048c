"""A worker driven by hand over a real Connection, for the test-mode proxy and client API tests."""

from __future__ import annotations

import asyncio
from typing import Any

from app.devnet.test_proxy import TestProxy
from app.network.connection import Connection
from app.network.dialer import open_connection
from app.network.tl import TLObject, decode, encode
from tests.unit.network.session_fixtures import QUIET, TRACE_OWNER

OWNER = TRACE_OWNER


def worker_params(**changes: Any) -> TLObject:
    """``worker.params`` for ``connectToProxy``; a change to None leaves that field out."""
    fields: dict[str, Any] = {
        "flags": 3,
        "worker_owner_address": OWNER,
        "model": "Qwen/Qwen3-8B@abc:def",
        "coefficient": 1500,
        "is_test": True,
        "proxy_cnt": 1,
        "max_active_requests": 2,
        "min_proto_version": 1,
        "max_proto_version": 2,
    }
    fields.update(changes)
    return TLObject("worker.params", {k: v for k, v in fields.items() if v is not None})


class FakeWorker:
    """The worker side driven by hand over a real Connection."""

    def __init__(self) -> None:
        self.packets: asyncio.Queue[TLObject] = asyncio.Queue()
        self.conn: Connection | None = None

    def on_packet(self, data: bytes) -> None:
        self.packets.put_nowait(decode(data))

    async def connect(self, proxy: TestProxy) -> Connection:
        self.conn = await open_connection(
            host="127.0.0.1", port=proxy.port, on_packet=self.on_packet, keepalive=QUIET
        )
        return self.conn

    async def query(self, obj: TLObject) -> TLObject:
        assert self.conn is not None
        return decode(await self.conn.query(encode(obj), 5))

    async def handshake(
        self, proxy: TestProxy, *, disabled: bool = False, **params: Any
    ) -> TLObject:
        await self.connect(proxy)
        answer = await self.query(
            TLObject("worker.connectToProxy", {"params": worker_params(**params)})
        )
        await self.query(
            TLObject(
                "worker.compareBalanceWithProxy",
                {"tokens_committed_to_blockchain": 0, "tokens_committed_to_db": 0, "max_tokens": 0},
            )
        )
        await self.query(TLObject("worker.proxyHandshakeComplete", {"is_disabled": disabled}))
        return answer

    def send(self, name: str, **fields: Any) -> None:
        assert self.conn is not None
        self.conn.send_packet(encode(TLObject(name, fields)))


def http_response() -> bytes:
    """A boxed ``http.response`` 200 OK with no headers and an empty payload (an answer's head)."""
    return encode(
        TLObject(
            "http.response",
            {
                "http_version": "HTTP/1.1",
                "status_code": 200,
                "reason": "OK",
                "headers": [],
                "payload": b"",
            },
        )
    )


def final_info(tokens: int) -> TLObject:
    """A ``proxy.queryFinalInfo`` billing ``tokens`` prompt tokens."""
    used = {
        "prompt_tokens_used": tokens,
        "cached_tokens_used": 0,
        "completion_tokens_used": 0,
        "reasoning_tokens_used": 0,
        "total_tokens_used": tokens,
    }
    return TLObject(
        "proxy.queryFinalInfo", {"flags": 0, "tokens_used": TLObject("tokensUsed", used)}
    )


async def next_packet(worker: FakeWorker, name: str) -> TLObject:
    """The next packet named ``name`` the worker receives (others are skipped)."""
    while True:
        packet = await worker.packets.get()
        if packet.name == name:
            return packet
