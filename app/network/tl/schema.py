"""The TL schema as data: parsing ``.tl`` declarations into combinators, types and constructor ids.

The bundled ``cocoon_worker.tl`` is parsed once at import into :data:`SCHEMA`; the codec compiles
its encoders and decoders from it. Ids follow TL's rule (CRC32 of the normalised declaration)
unless the declaration names an explicit ``#id``.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Literal

from app.network.tl.errors import TLSchemaError

#: Value types whose wire form the codec knows; the schema never declares them.
BUILTIN_TYPES = frozenset({"#", "int", "long", "double", "string", "bytes", "int128", "int256"})

_NAME = r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)?"
_HEAD_RE = re.compile(rf"^({_NAME})(?:#([0-9a-fA-F]{{1,8}}))?$")
_FIELD_RE = re.compile(r"^([a-z_][A-Za-z0-9_]*):(.+)$")
_COND_RE = re.compile(r"^([a-z_][A-Za-z0-9_]*)\.([0-9]|[12][0-9]|3[01])\?(.+)$")
_VECTOR_RE = re.compile(rf"^\((vector|Vector) ({_NAME}|#)\)$")
_TYPE_NAME_RE = re.compile(rf"^{_NAME}$|^#$")


@dataclass(frozen=True, slots=True)
class TypeRef:
    """A field's type expression.

    ``kind`` is ``builtin`` (``name`` is one of :data:`BUILTIN_TYPES`), ``bool`` (boxed
    ``Bool``), ``bare`` (``name`` is a lower-case constructor, fields only), ``boxed`` (``name`` is
    a type: id + fields of any of its constructors) or ``vector`` (``element`` is the element type;
    ``boxed_vector`` tells a capitalised ``Vector``, which carries the vector id, from ``vector``).
    """

    kind: Literal["builtin", "bool", "bare", "boxed", "vector"]
    name: str
    element: TypeRef | None = None
    boxed_vector: bool = False


@dataclass(frozen=True, slots=True)
class Field:
    """One ``name:type`` argument; ``condition`` is ``(flags_field, bit)`` for ``flags.N?type``."""

    name: str
    type: TypeRef
    condition: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Combinator:
    """A constructor or function: name, wire id, fields in order, the type it builds or returns."""

    name: str
    id: int
    fields: tuple[Field, ...]
    result_type: str
    is_function: bool


def tl_crc(declaration: str) -> int:
    """CRC32 id of a declaration: no explicit ``#id``, no ``;``, no brackets, spaces collapsed."""
    text = declaration.strip().rstrip(";").strip()
    head, _, rest = text.partition(" ")
    head = re.sub(r"#[0-9a-fA-F]{1,8}$", "", head)
    text = f"{head} {rest}"
    for bracket in "(){}":
        text = text.replace(bracket, "")
    return zlib.crc32(" ".join(text.split()).encode()) & 0xFFFFFFFF


class Schema:
    """Every combinator of a ``.tl`` text, looked up by name, by id, or by result type."""

    def __init__(self, combinators: list[Combinator]) -> None:
        by_name: dict[str, Combinator] = {}
        by_id: dict[int, Combinator] = {}
        by_type: dict[str, list[Combinator]] = {}
        for comb in combinators:
            if comb.name in by_name:
                raise TLSchemaError(f"combinator {comb.name} is declared twice")
            if comb.id in by_id:
                other = by_id[comb.id].name
                raise TLSchemaError(f"{comb.name} and {other} share id {comb.id:#010x}")
            by_name[comb.name] = comb
            by_id[comb.id] = comb
            if not comb.is_function:
                by_type.setdefault(comb.result_type, []).append(comb)
        self.by_name = MappingProxyType(by_name)
        self.by_id = MappingProxyType(by_id)
        self.constructors_of = MappingProxyType({k: tuple(v) for k, v in by_type.items()})
        self._check_references()

    def _check_references(self) -> None:
        for comb in self.by_name.values():
            seen: set[str] = set()
            for field in comb.fields:
                if field.name in seen:
                    raise TLSchemaError(f"{comb.name}: field {field.name} appears twice")
                if field.condition is not None:
                    flags_name = field.condition[0]
                    if flags_name not in seen or _field(comb, flags_name).type.name != "#":
                        where = f"{comb.name}.{field.name}"
                        raise TLSchemaError(f"{where}: no preceding {flags_name}:#")
                seen.add(field.name)
                self._check_type(comb.name, field.type)

    def _check_type(self, where: str, ref: TypeRef) -> None:
        if ref.kind == "vector" and ref.element is not None:
            self._check_type(where, ref.element)
        elif ref.kind == "bool":
            if {c.name for c in self.constructors_of.get("Bool", ())} != {"boolTrue", "boolFalse"}:
                raise TLSchemaError("Bool needs exactly the boolTrue and boolFalse constructors")
        elif ref.kind == "bare" and (
            ref.name not in self.by_name or self.by_name[ref.name].is_function
        ):
            raise TLSchemaError(f"{where}: unknown bare constructor {ref.name}")
        elif ref.kind == "boxed" and ref.name not in self.constructors_of:
            raise TLSchemaError(f"{where}: type {ref.name} has no constructors")


def _field(comb: Combinator, name: str) -> Field:
    return next(f for f in comb.fields if f.name == name)


def _is_capitalised(name: str) -> bool:
    return name.rpartition(".")[2][:1].isupper()


def _parse_type(text: str) -> TypeRef:
    vector = _VECTOR_RE.match(text)
    if vector is not None:
        element = _parse_type(vector.group(2))
        return TypeRef("vector", vector.group(1), element, boxed_vector=vector.group(1) == "Vector")
    if not _TYPE_NAME_RE.match(text):
        raise TLSchemaError(f"unsupported type expression {text!r}")
    if text in BUILTIN_TYPES:
        return TypeRef("builtin", text)
    if text == "Bool":
        return TypeRef("bool", text)
    if _is_capitalised(text):
        return TypeRef("boxed", text)
    return TypeRef("bare", text)


def _parse_declaration(declaration: str, *, is_function: bool) -> Combinator:
    lhs, eq, result = declaration.rpartition("=")
    result = result.strip()
    if not eq or not _TYPE_NAME_RE.match(result) or not _is_capitalised(result):
        raise TLSchemaError(f"declaration without a result type: {declaration!r}")
    tokens = _split_tokens(lhs)
    if not tokens:
        raise TLSchemaError(f"declaration without a name: {declaration!r}")
    head = _HEAD_RE.match(tokens[0])
    if head is None:
        raise TLSchemaError(f"bad combinator name {tokens[0]!r}")
    fields = tuple(_parse_field(token) for token in tokens[1:])
    explicit = head.group(2)
    comb_id = int(explicit, 16) if explicit else tl_crc(declaration)
    return Combinator(head.group(1), comb_id, fields, result, is_function)


def _split_tokens(text: str) -> list[str]:
    """Whitespace-separated tokens, keeping ``(vector x)`` groups whole."""
    tokens: list[str] = []
    depth = 0
    current = ""
    for ch in " ".join(text.split()):
        if ch == " " and depth == 0:
            tokens.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            raise TLSchemaError(f"unbalanced brackets in {text!r}")
        current += ch
    if depth != 0:
        raise TLSchemaError(f"unbalanced brackets in {text!r}")
    if current:
        tokens.append(current)
    return tokens


def _parse_field(token: str) -> Field:
    match = _FIELD_RE.match(token)
    if match is None:
        raise TLSchemaError(f"bad field {token!r}")
    name, type_text = match.groups()
    cond = _COND_RE.match(type_text)
    if cond is not None:
        return Field(name, _parse_type(cond.group(3)), (cond.group(1), int(cond.group(2))))
    return Field(name, _parse_type(type_text))


def parse_schema(text: str) -> list[Combinator]:
    """Parse ``.tl`` text (``//`` comments, ``---functions---``/``---types---`` sections)."""
    is_function = False
    combinators: list[Combinator] = []
    pending = ""
    for raw_line in text.splitlines():
        line = raw_line.split("//", 1)[0].strip()
        if line in ("---functions---", "---types---"):
            if pending.strip():
                raise TLSchemaError(f"unterminated declaration {pending.strip()!r}")
            is_function = line == "---functions---"
            continue
        pending += " " + line
        while ";" in pending:
            declaration, _, pending = pending.partition(";")
            combinators.append(_parse_declaration(declaration.strip(), is_function=is_function))
    if pending.strip():
        raise TLSchemaError(f"unterminated declaration {pending.strip()!r}")
    return combinators


def load_bundled_schema() -> Schema:
    """The schema shipped with the package (``cocoon_worker.tl``)."""
    text = resources.files(__package__).joinpath("cocoon_worker.tl").read_text(encoding="utf-8")
    return Schema(parse_schema(text))


SCHEMA = load_bundled_schema()
