"""``TLObject``: an immutable TL value (combinator name + field values) with a payload-safe repr."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from app.network.tl.errors import TLError
from app.network.tl.schema import SCHEMA

# Fields whose string values are public facts (addresses, model names, HTTP verbs) and may be shown
# in a repr. Every other string and every bytes value is shown by length only: headers may carry API
# keys and payloads carry prompts and answers.
_PUBLIC_STRING_FIELDS = frozenset(
    {
        "worker_owner_address",
        "proxy_owner_address",
        "proxy_sc_address",
        "worker_sc_address",
        "request_client_owner",
        "model",
        "method",
        "http_version",
        "reason",
    }
)
_MAX_SHOWN_STRING = 96


class TLObject:
    """One TL constructor or function call with its field values.

    Build one with ``TLObject("tcp.ping", {"id": 5})`` or ``TLObject("tcp.ping", id=5)``. Values:
    ``int`` (int, long, ``#``), ``float`` (double), ``bool`` (Bool), ``bytes`` (bytes; int256 as
    exactly 32 bytes), ``str`` (string), ``list`` (vectors) and nested ``TLObject``. The name is
    checked at construction; the fields are checked by :func:`app.network.tl.encode`.
    """

    __slots__ = ("_fields", "_name")

    _name: str
    _fields: dict[str, Any]

    def __init__(self, name: str, fields: Mapping[str, Any] | None = None, /, **kw: Any) -> None:
        if name not in SCHEMA.by_name:
            raise TLError(f"unknown TL combinator {name!r}")
        values = dict(fields) if fields is not None else {}
        values.update(kw)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_fields", values)

    @classmethod
    def _trusted(cls, name: str, fields: dict[str, Any]) -> TLObject:
        """Wrap a dict the decoder just built; skips the name check and the copy."""
        obj = cls.__new__(cls)
        object.__setattr__(obj, "_name", name)
        object.__setattr__(obj, "_fields", fields)
        return obj

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("TLObject is immutable; use replace()")

    def __delattr__(self, key: str) -> None:
        raise AttributeError("TLObject is immutable")

    @property
    def name(self) -> str:
        """The combinator name, e.g. ``"tcp.ping"``."""
        return self._name

    @property
    def id(self) -> int:
        """The constructor id as an unsigned 32-bit integer."""
        return SCHEMA.by_name[self._name].id

    @property
    def fields(self) -> Mapping[str, Any]:
        """A read-only view of the field values."""
        return MappingProxyType(self._fields)

    def __getitem__(self, field: str) -> Any:
        try:
            return self._fields[field]
        except KeyError:
            raise KeyError(f"{self._name} has no field {field!r}") from None

    def __contains__(self, field: object) -> bool:
        return field in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def get(self, field: str, default: Any = None) -> Any:
        return self._fields.get(field, default)

    def replace(self, /, **changes: Any) -> TLObject:
        """A copy with some fields changed (or added)."""
        return TLObject._trusted(self._name, {**self._fields, **changes})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TLObject):
            return NotImplemented
        return self._name == other._name and self._fields == other._fields

    def __hash__(self) -> int:
        return hash((self._name, _freeze(self._fields)))

    def __reduce__(self) -> tuple[type[TLObject], tuple[str, dict[str, Any]]]:
        # The default slot-state protocol would go through the blocked __setattr__.
        return (TLObject, (self._name, self._fields))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={_show(k, v)}" for k, v in self._fields.items())
        return f"TLObject({self._name!r}, {shown})" if shown else f"TLObject({self._name!r})"


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _show(field: str, value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        if field in _PUBLIC_STRING_FIELDS and len(value) <= _MAX_SHOWN_STRING:
            return repr(value)
        return f"<str, {len(value)} chars>"
    if isinstance(value, list):
        return "[" + ", ".join(_show(field, v) for v in value) + "]"
    if isinstance(value, TLObject | int | float | bool):
        return repr(value)
    return f"<{type(value).__name__}>"
