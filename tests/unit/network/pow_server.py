"""A loopback stand-in for a proxy VM router's proof-of-work step (``PowVerifyServer``), for tests.

It sends a 24-byte challenge whose magic, difficulty and salt the test picks (and may send only
part of it, then stall or hang up), reads exactly 12 answer bytes and checks them the way
``tee/cocoon/pow.cpp`` does, then echoes whatever the client sends. The check is written here
from the reference, not imported from ``app.network.tcp_pow``, so the tests compare two readings
of the spec.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import struct
from dataclasses import dataclass, field

REFERENCE_CHALLENGE_MAGIC = 0x418E1291  # cocoon.powSimple
REFERENCE_ANSWER_MAGIC = 0x01827319  # cocoon.powSimpleResponse


def reference_verify(salt: bytes, nonce: int, difficulty: int) -> bool:
    """``PowChallenge::verify_response``: clz64 of the hash's first 8 bytes as a LE u64."""
    data = salt + struct.pack("<q", nonce)  # memcpy of an int64 on a little-endian host
    (chunk,) = struct.unpack("<Q", hashlib.sha256(data).digest()[:8])  # td::as<td::uint64>
    zeros = 64 if chunk == 0 else 64 - chunk.bit_length()  # td::count_leading_zeroes64
    return zeros >= difficulty


@dataclass
class PowServerConfig:
    """What the server sends; ``send_bytes`` < 24 sends a prefix, then stalls or hangs up."""

    difficulty: int = 10
    magic: int = REFERENCE_CHALLENGE_MAGIC
    salt: bytes = field(default_factory=lambda: os.urandom(16))
    send_bytes: int = 24
    hang_up: bool = False  # after a partial challenge: close instead of stalling

    def challenge(self) -> bytes:
        """The challenge bytes, difficulty packed as the raw i32 whatever its value."""
        return struct.pack("<Ii16s", self.magic, self.difficulty, self.salt)


@dataclass
class Verdict:
    """What the server made of one client's answer."""

    accepted: bool
    reason: str
    nonce: int | None = None


class PowServer:
    """Serves :class:`PowServerConfig`'s challenge on 127.0.0.1; one :class:`Verdict` per answer."""

    def __init__(self, config: PowServerConfig) -> None:
        self.config = config
        self.verdicts: asyncio.Queue[Verdict] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self._closing = asyncio.Event()  # a stalled handler waits for this
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The listening port."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        """Listen on an ephemeral loopback port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def aclose(self) -> None:
        """Stop listening and end every open connection."""
        # Closing the transports (not cancelling the handlers: asyncio logs a cancelled
        # client_connected_cb as an error) ends each handler's read with EOF.
        self._closing.set()
        for writer in list(self._writers):
            writer.close()
        if self._handlers:
            await asyncio.wait(list(self._handlers))
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up; nothing to record
        finally:
            if task is not None:
                self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        config = self.config
        writer.write(config.challenge()[: config.send_bytes])
        await writer.drain()
        if config.send_bytes < 24:
            if not config.hang_up:
                await self._closing.wait()
            return
        # PowVerifyServer waits for exactly 12 bytes and parses them as cocoon.powSimpleResponse.
        answer = await reader.readexactly(12)
        magic, nonce = struct.unpack("<Iq", answer)
        if magic != REFERENCE_ANSWER_MAGIC:
            await self.verdicts.put(Verdict(False, f"answer magic {magic:#010x}"))
            return
        if not reference_verify(config.salt, nonce, config.difficulty):
            await self.verdicts.put(Verdict(False, "PoW verification failed", nonce))
            return
        await self.verdicts.put(Verdict(True, "ok", nonce))
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
