"""The framed ``AttestedPeerInfo`` record a COCOON router writes before relaying bytes.

See docs/protocol.md §2.3.

Body format is TD's ``td::serialize``: LE integers, TL-encoded strings, raw fixed-size hashes.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
from dataclasses import dataclass

MAX_RECORD = 16_536  # FramedPipe's limit
TDX_REGISTERS = 8  # mr_td, mr_config_id, mr_owner, mr_owner_config, rtmr0..3
REGISTER_SIZE = 48
REPORTDATA_SIZE = 64
TDX_BLOCK = TDX_REGISTERS * REGISTER_SIZE + REPORTDATA_SIZE  # 448 bytes; image hash input
SGX_BLOCK = 32 + REPORTDATA_SIZE
COLLATERAL_SIZE = 48
ZERO_HASH = bytes(32)


class PeerInfoError(ValueError):
    """The router's record is missing, truncated or malformed."""


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """What the local router says about the peer at the other end of the tunnel."""

    attestation_kind: str  # "none", "tdx" or "sgx"
    attestation: bytes  # the raw register block (empty for "none")
    collateral_root_hash: bytes
    public_key: bytes
    source_ip: str
    source_port: int
    destination_ip: str
    destination_port: int

    @property
    def image_hash(self) -> bytes:
        """SHA-256 of the TDX block with reportdata zeroed; 32 zero bytes without attestation."""
        if self.attestation_kind != "tdx":
            return ZERO_HASH
        registers = self.attestation[: TDX_REGISTERS * REGISTER_SIZE]
        return hashlib.sha256(registers + bytes(REPORTDATA_SIZE)).digest()

    def __repr__(self) -> str:
        return (
            f"PeerInfo({self.attestation_kind}, key={self.public_key.hex()[:16]}…, "
            f"{self.source_ip}:{self.source_port} -> {self.destination_ip}:{self.destination_port})"
        )

    def encode(self) -> bytes:
        """The framed record (length prefix included), as a router would write it."""
        parts = [_i32(0 if self.attestation_kind == "none" else 1)]
        if self.attestation_kind != "none":
            parts.append(_i32(0 if self.attestation_kind == "tdx" else 1))
            parts.append(self.attestation)
        parts += [
            self.collateral_root_hash,
            _tl_string(self.public_key),
            _tl_string(self.source_ip.encode()),
            _i32(self.source_port),
            _tl_string(self.destination_ip.encode()),
            _i32(self.destination_port),
        ]
        body = b"".join(parts)
        return struct.pack("<I", len(body)) + body


def parse_peer_info(body: bytes) -> PeerInfo:
    """Parse a record body (without its length prefix); trailing bytes are an error."""
    reader = _Reader(body)
    has_value = reader.i32()
    if has_value == 0:
        kind, attestation = "none", b""
    elif has_value == 1:
        variant = reader.i32()
        if variant == 0:
            kind, attestation = "tdx", reader.raw(TDX_BLOCK)
        elif variant == 1:
            kind, attestation = "sgx", reader.raw(SGX_BLOCK)
        else:
            raise PeerInfoError(f"unknown attestation variant {variant}")
    else:
        raise PeerInfoError(f"attestation flag must be 0 or 1, got {has_value}")
    info = PeerInfo(
        attestation_kind=kind,
        attestation=attestation,
        collateral_root_hash=reader.raw(COLLATERAL_SIZE),
        public_key=reader.string(),
        source_ip=_ascii(reader.string()),
        source_port=reader.i32(),
        destination_ip=_ascii(reader.string()),
        destination_port=reader.i32(),
    )
    if reader.remaining:
        raise PeerInfoError(f"{reader.remaining} trailing bytes after the peer record")
    return info


async def read_peer_info(sock: socket.socket, timeout: float = 30.0) -> PeerInfo:  # noqa: ASYNC109
    """Read exactly one framed record from a non-blocking socket (never a byte more)."""
    loop = asyncio.get_running_loop()

    async def read() -> PeerInfo:
        (size,) = struct.unpack("<I", await recv_exactly(loop, sock, 4))
        if size > MAX_RECORD:
            raise PeerInfoError(f"peer record of {size} bytes exceeds {MAX_RECORD}")
        return parse_peer_info(await recv_exactly(loop, sock, size))

    return await asyncio.wait_for(read(), timeout)


async def recv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes; :class:`ConnectionError` on EOF."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = await loop.sock_recv(sock, size - len(chunks))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(chunks)} of {size} bytes")
        chunks += chunk
    return bytes(chunks)


class _Reader:
    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def raw(self, size: int) -> bytes:
        if self.remaining < size:
            raise PeerInfoError("peer record is truncated")
        out = self._data[self._pos : self._pos + size]
        self._pos += size
        return out

    def i32(self) -> int:
        (value,) = struct.unpack("<i", self.raw(4))
        return int(value)

    def string(self) -> bytes:
        first = self.raw(1)[0]
        if first < 254:
            size, header = first, 1
        elif first == 254:
            size, header = int.from_bytes(self.raw(3), "little"), 4
        else:
            raise PeerInfoError("peer record string is too long")
        value = self.raw(size)
        self.raw(-(header + size) % 4)
        return value


def _ascii(raw: bytes) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise PeerInfoError("peer record address is not ASCII") from exc


def _i32(value: int) -> bytes:
    return struct.pack("<i", value)


def _tl_string(value: bytes) -> bytes:
    size = len(value)
    header = bytes([size]) if size < 254 else b"\xfe" + size.to_bytes(3, "little")
    raw = header + value
    return raw + bytes(-len(raw) % 4)
