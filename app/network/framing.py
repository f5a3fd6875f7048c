"""Runner framing: ``u32 LE len ‖ i32 LE seqno ‖ payload`` with per-direction sequence numbers.

The payload is one boxed ``tcp.Packet``; this module neither knows nor parses it.
See docs/protocol.md §2.5.
"""

from __future__ import annotations

import struct

MIN_PAYLOAD = 4
# The reference accepts lengths up to 2^24 inclusive (TcpConnection.cpp) and drops larger sends.
MAX_PAYLOAD = 1 << 24
HEADER_SIZE = 8

_HEADER = struct.Struct("<Ii")
_pack_header = _HEADER.pack
_unpack_header = _HEADER.unpack_from
_SEQNO_MAX = 2**31 - 1


class FrameError(ValueError):
    """The peer sent bytes that are not a valid frame stream; the connection must be closed."""


def encode_frame(seqno: int, payload: bytes) -> bytes:
    """One frame; raises :class:`FrameError` for a payload the peer would reject."""
    size = len(payload)
    if size < MIN_PAYLOAD or size > MAX_PAYLOAD:
        raise FrameError(f"frame payload of {size} bytes is outside [{MIN_PAYLOAD}, {MAX_PAYLOAD}]")
    return _pack_header(size, seqno) + payload


class FrameEncoder:
    """Numbers outgoing frames from 0 (init frames included)."""

    __slots__ = ("_seqno",)

    def __init__(self) -> None:
        self._seqno = 0

    @property
    def next_seqno(self) -> int:
        return self._seqno

    def encode(self, payload: bytes) -> bytes:
        frame = encode_frame(self._seqno, payload)
        # i32 on the wire; a connection never lives long enough to wrap, but never emit garbage.
        self._seqno = self._seqno + 1 if self._seqno < _SEQNO_MAX else 0
        return frame


class FrameDecoder:
    """Incremental decoder: :meth:`feed` bytes as they arrive, get the complete payloads back.

    A broken stream raises :class:`FrameError`, but only after the frames before the fault have
    been handed out: when a batch holds good frames and then a bad one, ``feed`` returns the
    good ones and records the fault in :attr:`error`; every later call raises it.
    The buffer is compacted once per ``feed`` call, never per frame, so a burst of small frames
    costs one copy per frame plus one ``del`` per read.
    """

    __slots__ = ("_buffer", "_error", "_expected")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._expected = 0
        self._error: FrameError | None = None

    @property
    def error(self) -> FrameError | None:
        """The fault that broke this stream, if any."""
        return self._error

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame (a truncated frame at EOF)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        pos = 0
        end = len(buffer)
        expected = self._expected
        try:
            while end - pos >= HEADER_SIZE:
                size, seqno = _unpack_header(buffer, pos)
                if size < MIN_PAYLOAD or size > MAX_PAYLOAD:
                    raise FrameError(
                        f"frame length {size} is outside [{MIN_PAYLOAD}, {MAX_PAYLOAD}]"
                    )
                if seqno != expected:
                    raise FrameError(f"frame seqno {seqno}, expected {expected}")
                start = pos + HEADER_SIZE
                if end - start < size:
                    break
                frames.append(bytes(buffer[start : start + size]))
                pos = start + size
                expected = expected + 1 if expected < _SEQNO_MAX else 0
        except FrameError as exc:
            self._error = exc
            buffer.clear()
            if not frames:
                raise
            return frames
        finally:
            self._expected = expected
        if pos:
            del buffer[:pos]
        return frames
