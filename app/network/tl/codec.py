"""Encoding and decoding TL objects with per-combinator closures compiled once from the schema.

Every combinator gets a field encoder and a field decoder built from its declaration (no per-message
byte offsets anywhere); boxed forms add the 4-byte constructor id. Anything that goes wrong while
decoding surfaces as :class:`TLError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.network.tl import wire
from app.network.tl.errors import TLError, TLSchemaError
from app.network.tl.schema import SCHEMA, Combinator, Schema, TypeRef, tl_crc
from app.network.tl.tl_object import TLObject

FieldsEncoder = Callable[[Mapping[str, Any], bytearray], None]
FieldsDecoder = Callable[[bytes, int], tuple[dict[str, Any], int]]

_VECTOR_ID = tl_crc("vector {t:Type} # [ t ] = Vector t")
_VECTOR_ID_BYTES = wire.U32.pack(_VECTOR_ID)


@dataclass(frozen=True, slots=True)
class Compiled:
    """The compiled codec of one combinator."""

    combinator: Combinator
    id_bytes: bytes
    encode_fields: FieldsEncoder
    decode_fields: FieldsDecoder
    min_size: int


class _Compiler:
    """Builds :class:`Compiled` entries for every combinator of a schema, dependencies first."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.done: dict[str, Compiled] = {}
        self.in_progress: set[str] = set()
        true_id = schema.by_name["boolTrue"].id
        false_id = schema.by_name["boolFalse"].id
        self.bool_enc, self.bool_dec = wire.bool_codec(true_id, false_id)

    def compile_all(self) -> dict[str, Compiled]:
        for name in self.schema.by_name:
            self.compiled(name)
        return self.done

    def compiled(self, name: str) -> Compiled:
        if name in self.done:
            return self.done[name]
        if name in self.in_progress:
            raise TLSchemaError(f"{name} contains itself; recursive types are not supported")
        self.in_progress.add(name)
        comb = self.schema.by_name[name]
        plan: list[tuple[str, wire.Encoder, wire.Decoder, str | None, int]] = []
        min_size = 0
        for field in comb.fields:
            enc, dec, size = self.type_codec(field.type)
            cond_name, mask = (None, 0)
            if field.condition is not None:
                cond_name, mask = field.condition[0], 1 << field.condition[1]
            else:
                min_size += size
            plan.append((field.name, enc, dec, cond_name, mask))
        result = Compiled(
            comb,
            wire.U32.pack(comb.id),
            _fields_encoder(comb.name, tuple(plan)),
            _fields_decoder(comb.name, tuple(plan)),
            min_size,
        )
        self.in_progress.discard(name)
        self.done[name] = result
        return result

    def type_codec(self, ref: TypeRef) -> tuple[wire.Encoder, wire.Decoder, int]:
        if ref.kind == "builtin":
            return wire.BUILTINS[ref.name]
        if ref.kind == "bool":
            return self.bool_enc, self.bool_dec, 4
        if ref.kind == "bare":
            return self._bare_codec(self.compiled(ref.name))
        if ref.kind == "boxed":
            members = [self.compiled(c.name) for c in self.schema.constructors_of[ref.name]]
            return (*_boxed_codec(ref.name, members), 4)
        if ref.element is None:
            raise TLSchemaError(f"vector without an element type: {ref}")
        enc, dec, size = self.type_codec(ref.element)
        vec_enc, vec_dec = _vector_codec(enc, dec, size, boxed=ref.boxed_vector)
        return vec_enc, vec_dec, 8 if ref.boxed_vector else 4

    @staticmethod
    def _bare_codec(target: Compiled) -> tuple[wire.Encoder, wire.Decoder, int]:
        name = target.combinator.name
        encode_fields, decode_fields = target.encode_fields, target.decode_fields

        def enc(value: Any, out: bytearray) -> None:
            if not isinstance(value, TLObject) or value.name != name:
                raise TLError(f"expected a {name} object")
            encode_fields(value._fields, out)

        def dec(buf: bytes, pos: int) -> tuple[Any, int]:
            fields, pos = decode_fields(buf, pos)
            return TLObject._trusted(name, fields), pos

        return enc, dec, target.min_size


def _boxed_codec(type_name: str, members: list[Compiled]) -> tuple[wire.Encoder, wire.Decoder]:
    by_name = {m.combinator.name: m for m in members}
    by_id = {m.combinator.id: m for m in members}

    def enc(value: Any, out: bytearray) -> None:
        member = by_name.get(value.name) if isinstance(value, TLObject) else None
        if member is None:
            raise TLError(f"expected a {type_name} object")
        out += member.id_bytes
        member.encode_fields(value._fields, out)

    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        if pos + 4 > len(buf):
            raise wire.truncated(pos)
        (cid,) = wire.U32.unpack_from(buf, pos)
        member = by_id.get(cid)
        if member is None:
            raise TLError(f"constructor {cid:#010x} at byte {pos} is not a {type_name}")
        fields, pos = member.decode_fields(buf, pos + 4)
        return TLObject._trusted(member.combinator.name, fields), pos

    return enc, dec


def _skip_vector_id(buf: bytes, pos: int) -> int:
    if pos + 4 > len(buf):
        raise wire.truncated(pos)
    if wire.U32.unpack_from(buf, pos)[0] != _VECTOR_ID:
        raise TLError(f"expected a vector constructor at byte {pos}")
    return pos + 4


def _vector_codec(
    enc_item: wire.Encoder, dec_item: wire.Decoder, item_size: int, *, boxed: bool
) -> tuple[wire.Encoder, wire.Decoder]:
    # A count is only plausible if that many of the smallest possible items fit in what is left.
    item_size = max(item_size, 1)

    def enc(value: Any, out: bytearray) -> None:
        if not isinstance(value, list | tuple):
            raise TLError(f"expected a list, got {type(value).__name__}")
        if boxed:
            out += _VECTOR_ID_BYTES
        wire.enc_int(len(value), out)
        for item in value:
            enc_item(item, out)

    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        if boxed:
            pos = _skip_vector_id(buf, pos)
        count, pos = wire.dec_int(buf, pos)
        if count < 0 or count * item_size > len(buf) - pos:
            raise TLError(f"vector count {count} at byte {pos - 4} exceeds the data")
        items = []
        for _ in range(count):
            item, pos = dec_item(buf, pos)
            items.append(item)
        return items, pos

    return enc, dec


_Plan = tuple[tuple[str, wire.Encoder, wire.Decoder, str | None, int], ...]


def _encode_failure(
    comb_name: str, fields: Mapping[str, Any], name: str, exc: Exception
) -> TLError:
    if isinstance(exc, TLError):
        return TLError(f"{comb_name}.{name}: {exc}")
    if name not in fields:
        return TLError(f"{comb_name}: missing field {name}")
    return TLError(f"{comb_name}.{name}: {type(exc).__name__}")


def _unexpected_fields(comb_name: str, fields: Mapping[str, Any], plan: _Plan) -> TLError:
    unknown = sorted(set(fields) - {p[0] for p in plan})
    return TLError(f"{comb_name}: unexpected fields {unknown}")


def _fields_encoder(comb_name: str, plan: _Plan) -> FieldsEncoder:
    if any(p[3] is not None for p in plan):
        return _flagged_encoder(comb_name, plan)
    # No flags-conditional fields: every field is written, so a count check finds extras.
    simple = tuple((p[0], p[1]) for p in plan)
    count = len(simple)

    def encode_plain(fields: Mapping[str, Any], out: bytearray) -> None:
        name = ""
        try:
            for name, enc in simple:
                enc(fields[name], out)
        except (KeyError, TLError) as exc:
            raise _encode_failure(comb_name, fields, name, exc) from None
        if len(fields) != count:
            raise _unexpected_fields(comb_name, fields, plan)

    return encode_plain


def _flagged_encoder(comb_name: str, plan: _Plan) -> FieldsEncoder:
    def encode_flagged(fields: Mapping[str, Any], out: bytearray) -> None:
        used = 0
        name = ""
        try:
            for name, enc, _dec, cond_name, mask in plan:
                if cond_name is not None and not fields[cond_name] & mask:
                    if name in fields:
                        raise TLError(f"set but its {cond_name} bit is clear")
                    continue
                enc(fields[name], out)
                used += 1
        except (KeyError, TLError) as exc:
            raise _encode_failure(comb_name, fields, name, exc) from None
        if used != len(fields):
            raise _unexpected_fields(comb_name, fields, plan)

    return encode_flagged


def _fields_decoder(comb_name: str, plan: _Plan) -> FieldsDecoder:
    if any(p[3] is not None for p in plan):
        return _flagged_decoder(comb_name, plan)
    simple = tuple((p[0], p[2]) for p in plan)

    def decode_plain(buf: bytes, pos: int) -> tuple[dict[str, Any], int]:
        values: dict[str, Any] = {}
        name = ""
        try:
            for name, dec in simple:
                values[name], pos = dec(buf, pos)
        except TLError as exc:
            raise TLError(f"{comb_name}.{name}: {exc}") from None
        return values, pos

    return decode_plain


def _flagged_decoder(comb_name: str, plan: _Plan) -> FieldsDecoder:
    def decode_flagged(buf: bytes, pos: int) -> tuple[dict[str, Any], int]:
        values: dict[str, Any] = {}
        name = ""
        try:
            for name, _enc, dec, cond_name, mask in plan:
                if cond_name is None or values[cond_name] & mask:
                    values[name], pos = dec(buf, pos)
        except TLError as exc:
            raise TLError(f"{comb_name}.{name}: {exc}") from None
        return values, pos

    return decode_flagged


COMPILED: Mapping[str, Compiled] = _Compiler(SCHEMA).compile_all()
_BY_ID: dict[int, Compiled] = {c.combinator.id: c for c in COMPILED.values()}


def _lookup(name: str) -> Compiled:
    try:
        return COMPILED[name]
    except KeyError:
        raise TLError(f"unknown TL combinator {name!r}") from None


def constructor_id(name: str) -> int:
    """The wire id (unsigned 32-bit) of a combinator."""
    return _lookup(name).combinator.id


def encode(obj: TLObject) -> bytes:
    """The boxed form of ``obj``: constructor id, then its fields."""
    if not isinstance(obj, TLObject):
        raise TLError(f"expected a TLObject, got {type(obj).__name__}")
    compiled = COMPILED[obj.name]
    out = bytearray(compiled.id_bytes)
    compiled.encode_fields(obj._fields, out)
    return bytes(out)


def encode_fields(name: str, fields: Mapping[str, Any]) -> bytes:
    """The boxed form of combinator ``name`` with ``fields``, without building a TLObject first."""
    compiled = _lookup(name)
    out = bytearray(compiled.id_bytes)
    compiled.encode_fields(fields, out)
    return bytes(out)


def encode_bare(obj: TLObject) -> bytes:
    """The bare form of ``obj``: its fields only."""
    if not isinstance(obj, TLObject):
        raise TLError(f"expected a TLObject, got {type(obj).__name__}")
    out = bytearray()
    COMPILED[obj.name].encode_fields(obj._fields, out)
    return bytes(out)


def _matches(comb: Combinator, expect: str) -> bool:
    return comb.name == expect or (not comb.is_function and comb.result_type == expect)


def decode(data: bytes | bytearray | memoryview, expect: str | None = None) -> TLObject:
    """Decode one boxed object that fills ``data`` exactly.

    ``expect`` is a type name (``"tcp.Packet"``) or a combinator name; a different object is a
    :class:`TLError`, as are unknown ids, truncation, bad padding and trailing bytes.
    """
    buf = data if type(data) is bytes else bytes(data)
    if expect is not None and expect not in SCHEMA.by_name and expect not in SCHEMA.constructors_of:
        raise TLError(f"unknown TL type or combinator {expect!r}")
    if len(buf) < 4:
        raise TLError(f"{len(buf)} bytes is too short for a TL object")
    (cid,) = wire.U32.unpack_from(buf, 0)
    compiled = _BY_ID.get(cid)
    if compiled is None:
        raise TLError(f"unknown constructor id {cid:#010x}")
    comb = compiled.combinator
    if expect is not None and not _matches(comb, expect):
        raise TLError(f"expected {expect}, got {comb.name}")
    fields, _ = _decode_checked(compiled, buf, 4)
    return TLObject._trusted(comb.name, fields)


def decode_bare(data: bytes | bytearray | memoryview, name: str) -> TLObject:
    """Decode the bare form (fields only) of combinator ``name`` that fills ``data`` exactly."""
    compiled = _lookup(name)
    buf = data if type(data) is bytes else bytes(data)
    fields, _ = _decode_checked(compiled, buf, 0)
    return TLObject._trusted(name, fields)


def _decode_checked(compiled: Compiled, buf: bytes, pos: int) -> tuple[dict[str, Any], int]:
    try:
        fields, pos = compiled.decode_fields(buf, pos)
    except struct.error:  # pragma: no cover - every reader checks bounds first; kept as a backstop
        raise TLError(f"{compiled.combinator.name}: truncated input") from None
    if pos != len(buf):
        raise TLError(f"{len(buf) - pos} trailing bytes after {compiled.combinator.name}")
    return fields, pos
