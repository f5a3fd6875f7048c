"""The COCOON TL codec: the schema as data (``cocoon_worker.tl``), ``TLObject``, encode and decode.

Usage::

    from app.network.tl import TLObject, decode, encode
    frame_payload = encode(TLObject("tcp.ping", id=7))
    packet = decode(frame_payload, expect="tcp.Packet")
    inner = decode(packet["data"])  # nested TL carried as bytes is decoded explicitly

Hot path: :func:`encode_query_answer_part` builds a boxed ``proxy.queryAnswerPartEx`` straight from
its arguments through the precompiled field encoder (no ``TLObject`` is built);
:func:`encode_fields` does the same for any combinator given a plain mapping of field values.
``benchmarks/tl_codec.py`` measures both against a hand-written ``struct`` encoder.
"""

from __future__ import annotations

from typing import Any

from app.network.tl.codec import (
    COMPILED,
    constructor_id,
    decode,
    decode_bare,
    encode,
    encode_bare,
    encode_fields,
)
from app.network.tl.errors import TLError, TLSchemaError
from app.network.tl.schema import SCHEMA
from app.network.tl.tl_object import TLObject

__all__ = [
    "SCHEMA",
    "TLError",
    "TLObject",
    "TLSchemaError",
    "constructor_id",
    "decode",
    "decode_bare",
    "encode",
    "encode_bare",
    "encode_fields",
    "encode_query_answer_part",
]

_PART = COMPILED["proxy.queryAnswerPartEx"]
_PART_ID = _PART.id_bytes
_PART_FIELDS = _PART.encode_fields


def encode_query_answer_part(
    request_id: bytes, answer: bytes, flags: int, final_info: TLObject | None = None
) -> bytes:
    """A boxed ``proxy.queryAnswerPartEx``; ``final_info`` (``proxy.queryFinalInfo``) iff bit 0."""
    fields: dict[str, Any] = {"request_id": request_id, "answer": answer, "flags": flags}
    if final_info is not None:
        fields["final_info"] = final_info
    out = bytearray(_PART_ID)
    _PART_FIELDS(fields, out)
    return bytes(out)
