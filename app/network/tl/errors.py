"""The TL codec's errors: bad wire data or a malformed object, and a broken bundled schema."""

from __future__ import annotations


class TLError(ValueError):
    """Bytes that are not a valid TL object of the expected kind, or an unencodable object.

    Messages name the combinator, field and byte offset involved, never field values, so that a
    payload (a prompt, an answer, a voucher) can never leak into a log through an error.
    """


class TLSchemaError(Exception):
    """The bundled ``.tl`` text could not be parsed: a defect of the package, not of any input."""
