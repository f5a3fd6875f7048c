"""Reading the captured COCOON wire traces: raw ``.bin`` streams split into records and frames.

Each ``.bin`` is one direction of one TCP connection. The worker→router side starts with a SOCKS5
greeting and CONNECT request, the router→worker side with the SOCKS5 replies and one framed
``AttestedPeerInfo`` record, the router→proxy side with an ``AttestedPeerInfo`` record; after that
every record is a runner frame ``u32 LE length | i32 LE seqno | boxed tcp.Packet``. The traces
live in ``tests/fixtures/cocoon-traces`` (their README says how they were captured); they are part
of the repository, so a missing file fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

TRACES_DIR = Path(__file__).parents[2] / "fixtures" / "cocoon-traces"

Preamble = Literal["socks_client", "socks_server", "attested", "none"]

#: Stream name (file stem) → what precedes its first frame.
STREAMS: dict[str, Preamble] = {
    "worker-router.w2r": "socks_client",
    "worker-router.r2w": "socks_server",
    "router-proxy.r2p": "attested",
    "router-proxy.p2r": "none",
}


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a stream: kind (``socks5.*``, ``attested_peer_info``, ``frame``) and bytes."""

    kind: str
    offset: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class Frame:
    """One runner frame: ``offset`` of its header in the ``.bin``, ``seqno``, the TL ``payload``."""

    stream: str
    offset: int
    seqno: int
    payload: bytes

    @property
    def length(self) -> int:
        return 8 + len(self.payload)


class TraceFormatError(ValueError):
    """A ``.bin`` file does not split into the records its preamble promises."""


def traces_dir() -> Path:
    """The fixtures folder (part of the repository: its absence is an error, not a skip)."""
    if not TRACES_DIR.is_dir():
        raise FileNotFoundError(f"the COCOON trace fixtures are missing: {TRACES_DIR}")
    return TRACES_DIR


def _take(data: bytes, pos: int, n: int) -> bytes:
    if pos + n > len(data):
        raise TraceFormatError(f"stream ends inside a record at byte {pos}")
    return data[pos : pos + n]


def _preamble_records(data: bytes, preamble: Preamble) -> list[Record]:
    records: list[Record] = []
    pos = 0
    if preamble == "socks_client":
        greeting = _take(data, 0, 2 + _take(data, 0, 2)[1])
        records.append(Record("socks5.greeting", 0, greeting))
        pos = len(greeting)
    if preamble in ("socks_client", "socks_server"):
        if preamble == "socks_server":
            records.append(Record("socks5.method_reply", 0, _take(data, 0, 2)))
            pos = 2
        # IPv4 only (ATYP 1): ver, cmd/rep, rsv, atyp, 4-byte address, 2-byte port.
        request = _take(data, pos, 10)
        if request[3] != 1:
            raise TraceFormatError("SOCKS5 record without an IPv4 address")
        kind = "socks5.connect" if preamble == "socks_client" else "socks5.connect_reply"
        records.append(Record(kind, pos, request))
        pos += 10
    if preamble in ("socks_server", "attested"):
        (body_len,) = struct.unpack_from("<I", _take(data, pos, 4))
        records.append(Record("attested_peer_info", pos, _take(data, pos, 4 + body_len)))
    return records


def read_records(stream: str) -> list[Record]:
    """Every record of ``<stream>.bin`` in byte order, frames included."""
    data = (traces_dir() / f"{stream}.bin").read_bytes()
    records = _preamble_records(data, STREAMS[stream])
    pos = records[-1].offset + len(records[-1].raw) if records else 0
    while pos < len(data):
        (length,) = struct.unpack_from("<I", _take(data, pos, 8))
        records.append(Record("frame", pos, _take(data, pos, 8 + length)))
        pos += 8 + length
    return records


def read_frames(stream: str) -> list[Frame]:
    """The runner frames of ``<stream>.bin`` (preamble records skipped)."""
    frames = []
    for record in read_records(stream):
        if record.kind == "frame":
            (seqno,) = struct.unpack_from("<i", record.raw, 4)
            frames.append(Frame(stream, record.offset, seqno, record.raw[8:]))
    return frames


def read_frame_annotations(stream: str) -> list[dict[str, Any]]:
    """The ``<stream>.frames.jsonl`` records (every record kind), in byte order."""
    path = traces_dir() / f"{stream}.frames.jsonl"
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def read_client_responses() -> list[dict[str, Any]]:
    """``client-responses.jsonl``: per label, a client's request and what the backend got and
    answered."""
    path = traces_dir() / "client-responses.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def all_frames() -> list[Frame]:
    """Every frame of every stream."""
    return [frame for stream in STREAMS for frame in read_frames(stream)]
