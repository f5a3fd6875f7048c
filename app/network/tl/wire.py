"""TL wire forms of the built-in value types: ints, doubles, int256, padded strings/bytes, Bool.

Each type has an encoder ``(value, out: bytearray) -> None`` and a decoder
``(buf: bytes, pos: int) -> (value, new_pos)``. Decoders check bounds themselves (no silent short
slices) and raise :class:`TLError` on anything that would not re-encode to the same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from app.network.tl.errors import TLError

Encoder = Callable[[Any, bytearray], None]
Decoder = Callable[[bytes, int], tuple[Any, int]]

U32 = struct.Struct("<I")
I32 = struct.Struct("<i")
I64 = struct.Struct("<q")
F64 = struct.Struct("<d")

_ZEROS = (b"", b"\0", b"\0\0", b"\0\0\0")
_LONG_FORM = 1 << 24
# Strings and byte fields shorter than this use the one-byte length header.
_SHORT_FORM = 254


def truncated(pos: int) -> TLError:
    return TLError(f"input ends early at byte {pos}")


def _fixed_int(packer: struct.Struct, lo: int, hi: int) -> tuple[Encoder, Decoder]:
    pack = packer.pack
    unpack_from = packer.unpack_from
    size = packer.size

    def enc(value: Any, out: bytearray) -> None:
        # Plain ints skip the slower checks; bool is an int subclass but never a TL integer, while
        # other int subclasses (Nanoton) are fine. struct itself refuses out-of-range values.
        if value.__class__ is not int and (isinstance(value, bool) or not isinstance(value, int)):
            raise TLError(f"expected an int, got {type(value).__name__}")
        try:
            out += pack(value)
        except struct.error:
            raise TLError(f"integer out of range [{lo}, {hi}]") from None

    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        end = pos + size
        if end > len(buf):
            raise truncated(pos)
        return unpack_from(buf, pos)[0], end

    return enc, dec


enc_int, dec_int = _fixed_int(I32, -(1 << 31), (1 << 31) - 1)
enc_flags, dec_flags = _fixed_int(U32, 0, (1 << 32) - 1)
enc_long, dec_long = _fixed_int(I64, -(1 << 63), (1 << 63) - 1)


def enc_double(value: Any, out: bytearray) -> None:
    if isinstance(value, bool) or not isinstance(value, float | int):
        raise TLError(f"expected a float, got {type(value).__name__}")
    out += F64.pack(value)


def dec_double(buf: bytes, pos: int) -> tuple[Any, int]:
    if pos + 8 > len(buf):
        raise truncated(pos)
    return F64.unpack_from(buf, pos)[0], pos + 8


def _fixed_bytes(size: int) -> tuple[Encoder, Decoder]:
    def enc(value: Any, out: bytearray) -> None:
        if not isinstance(value, bytes | bytearray) or len(value) != size:
            raise TLError(f"expected exactly {size} bytes")
        out += value

    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        end = pos + size
        if end > len(buf):
            raise truncated(pos)
        return buf[pos:end], end

    return enc, dec


enc_int128, dec_int128 = _fixed_bytes(16)
enc_int256, dec_int256 = _fixed_bytes(32)


def put_bytes(data: bytes | bytearray, out: bytearray) -> None:
    """Append TL ``bytes``: length header, data, zero padding of header + data to 4."""
    n = len(data)
    if n < _SHORT_FORM:
        out.append(n)
        out += data
        out += _ZEROS[-(n + 1) & 3]
    elif n < _LONG_FORM:
        out += U32.pack((n << 8) | 0xFE)
        out += data
        out += _ZEROS[-n & 3]
    else:
        # TD's form for >= 16 MiB; never fits a frame, kept so that encode and decode agree.
        out.append(0xFF)
        out += n.to_bytes(7, "little")
        out += data
        out += _ZEROS[-n & 3]


def enc_bytes(value: Any, out: bytearray) -> None:
    if value.__class__ is not bytes and not isinstance(value, bytes | bytearray):
        raise TLError(f"expected bytes, got {type(value).__name__}")
    n = len(value)
    if n < _SHORT_FORM:  # the streaming hot path: inlined rather than a call to put_bytes
        out.append(n)
        out += value
        out += _ZEROS[-(n + 1) & 3]
    else:
        put_bytes(value, out)


def dec_bytes(buf: bytes, pos: int) -> tuple[Any, int]:
    end = len(buf)
    if pos >= end:
        raise truncated(pos)
    first = buf[pos]
    if first < _SHORT_FORM:
        start, n = pos + 1, first
    elif first == _SHORT_FORM:
        start = pos + 4
        if start > end:
            raise truncated(pos)
        n = int.from_bytes(buf[pos + 1 : start], "little")
        if n < _SHORT_FORM:
            raise TLError(f"non-canonical length header at byte {pos}")
    else:
        start = pos + 8
        if start > end:
            raise truncated(pos)
        n = int.from_bytes(buf[pos + 1 : start], "little")
        if n < _LONG_FORM:
            raise TLError(f"non-canonical length header at byte {pos}")
    stop = start + n
    padded = stop + (-(stop - pos) & 3)
    if padded > end:
        raise TLError(f"length {n} at byte {pos} runs past the end of the input")
    if buf[stop:padded] != _ZEROS[padded - stop]:
        raise TLError(f"non-zero padding at byte {stop}")
    return buf[start:stop], padded


def enc_string(value: Any, out: bytearray) -> None:
    if not isinstance(value, str):
        raise TLError(f"expected a str, got {type(value).__name__}")
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise TLError("string is not encodable as UTF-8") from None
    put_bytes(data, out)


def dec_string(buf: bytes, pos: int) -> tuple[Any, int]:
    data, pos = dec_bytes(buf, pos)
    # surrogateescape keeps invalid UTF-8 so that re-encoding reproduces the bytes exactly.
    return data.decode("utf-8", "surrogateescape"), pos


def bool_codec(true_id: int, false_id: int) -> tuple[Encoder, Decoder]:
    """Boxed ``Bool`` from the schema's ``boolTrue`` / ``boolFalse`` ids."""
    true_bytes, false_bytes = U32.pack(true_id), U32.pack(false_id)

    def enc(value: Any, out: bytearray) -> None:
        if value is True:
            out += true_bytes
        elif value is False:
            out += false_bytes
        else:
            raise TLError(f"expected a bool, got {type(value).__name__}")

    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        if pos + 4 > len(buf):
            raise truncated(pos)
        (cid,) = U32.unpack_from(buf, pos)
        if cid == true_id:
            return True, pos + 4
        if cid == false_id:
            return False, pos + 4
        raise TLError(f"{cid:#010x} at byte {pos} is not a Bool constructor")

    return enc, dec


#: ``name -> (encoder, decoder, minimum wire size)`` of every built-in lower-case type.
BUILTINS: dict[str, tuple[Encoder, Decoder, int]] = {
    "#": (enc_flags, dec_flags, 4),
    "int": (enc_int, dec_int, 4),
    "long": (enc_long, dec_long, 8),
    "double": (enc_double, dec_double, 8),
    "int128": (enc_int128, dec_int128, 16),
    "int256": (enc_int256, dec_int256, 32),
    "string": (enc_string, dec_string, 4),
    "bytes": (enc_bytes, dec_bytes, 4),
}
