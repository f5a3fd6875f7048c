"""Token counting from the backend's ``usage`` while an answer streams through, framing intact.

Handles SSE (event by event), JSON lines and single JSON documents; only usage-bearing values are
parsed and re-serialised (with the cost fields added), every other byte passes through untouched.
"""

from __future__ import annotations

import json
import re
from typing import Any

from app.core.billing import BillingParams, RawTokens, adjusted_tokens, usage_costs
from app.network.answer import TokensUsed

_USAGE_KEY = b'"usage"'
_MAX_COUNT = 2**63 - 1
# The first bytes of a line that make a body Server-Sent Events whatever its Content-Type says.
_SSE_PREFIXES = (b"data:", b"event:", b"id:", b"retry:", b":")
# Byte pairs that end an SSE event (a line terminator followed by an empty line). A chunk that
# ends with one needs no holding back; "\r\n\r\n" ends with "\n\r\n".
_SSE_EVENT_ENDS = (b"\n\n", b"\r\r", b"\n\r\n")
_SSE_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n)")

_UNDECIDED, _SSE, _LINES, _DOCUMENT = range(4)
_NOT_JSON: Any = object()


class AnswerMeter:
    """Counts one answer's tokens and adds the cost fields to its ``usage``, chunk by chunk.

    ``feed`` returns the bytes to forward now (possibly empty: an incomplete line or event is held
    back until its end arrives, so a ``usage`` object split across chunks is still seen whole);
    ``finish`` returns whatever was held back. Like the reference, counts are the maxima seen of
    ``usage.prompt_tokens``, ``usage.prompt_tokens_details.cached_tokens``,
    ``usage.completion_tokens``, ``usage.completion_tokens_details.reasoning_tokens`` and
    ``usage.reasoning_tokens``, and costs are injected only into a value that raised a maximum.
    """

    __slots__ = (
        "_cached",
        "_coefficient",
        "_completion",
        "_mode",
        "_params",
        "_pending",
        "_prompt",
        "_reasoning",
    )

    def __init__(self, coefficient: int, params: BillingParams, content_type: str = "") -> None:
        self._coefficient = coefficient
        self._params = params
        self._pending = b""
        self._prompt = self._cached = self._completion = self._reasoning = 0
        self._mode = _UNDECIDED
        self.set_content_type(content_type)

    def set_content_type(self, content_type: str) -> None:
        """The answer's Content-Type, once known (before the first :meth:`feed`).

        ``text/event-stream`` means SSE; anything else is sniffed from the first line, since
        backends label JSON lines ``application/json`` (the reference's own benchmark does).
        """
        if content_type.split(";", 1)[0].strip().lower() == "text/event-stream":
            self._mode = _SSE

    @property
    def raw(self) -> RawTokens:
        return RawTokens(self._prompt, self._cached, self._completion, self._reasoning)

    @property
    def tokens(self) -> TokensUsed:
        return adjusted_tokens(self.raw, self._coefficient, self._params)

    @property
    def framing(self) -> str:
        return ("undecided", "sse", "json-lines", "json-document")[self._mode]

    def feed(self, chunk: bytes) -> bytes:
        """Take the next body chunk; return the bytes to forward now."""
        mode = self._mode
        if mode == _LINES:
            if not self._pending:
                if chunk.endswith(b"\n") and _USAGE_KEY not in chunk:
                    return chunk
                buf = chunk
            else:
                buf = self._pending + chunk
            cut = buf.rfind(b"\n") + 1
            self._pending = buf[cut:]
            region = buf[:cut]
            return self._rewrite_lines(region) if _USAGE_KEY in region else region
        if mode == _SSE:
            if not self._pending:
                if chunk.endswith(_SSE_EVENT_ENDS) and _USAGE_KEY not in chunk:
                    return chunk
                buf = chunk
            else:
                buf = self._pending + chunk
            cut = _last_event_end(buf)
            self._pending = buf[cut:]
            region = buf[:cut]
            return self._rewrite_events(region) if _USAGE_KEY in region else region
        self._pending += chunk
        if mode == _DOCUMENT or not self._decide(final=False):
            return b""
        buf, self._pending = self._pending, b""
        return self.feed(buf)

    def finish(self) -> bytes:
        """The body ended: return the bytes still held back (rewritten if they carry usage)."""
        if self._mode == _UNDECIDED:
            self._decide(final=True)
        tail, self._pending = self._pending, b""
        if _USAGE_KEY not in tail:
            return tail
        if self._mode == _SSE:
            return self._rewrite_event(tail)
        if self._mode == _DOCUMENT:
            return self._rewrite_document(tail)
        return self._rewrite_lines(tail)

    def _decide(self, *, final: bool) -> bool:
        """Pick the framing from the first non-blank line; False while it is incomplete."""
        head = self._pending.lstrip()
        end = head.find(b"\n")
        if end < 0 and not final:
            if head.startswith(_SSE_PREFIXES):
                self._mode = _SSE
                return True
            return False
        first = head if end < 0 else head[:end]
        if first.startswith(_SSE_PREFIXES):
            self._mode = _SSE
        elif end < 0:
            self._mode = _DOCUMENT  # one value with no line breaks: a plain JSON answer
        else:
            self._mode = _LINES if _loads(first) is not _NOT_JSON else _DOCUMENT
        return True

    # --- rewriting (only ever reached for bytes that contain '"usage"') -------------------

    def _rewrite_lines(self, region: bytes) -> bytes:
        lines = region.split(b"\n")
        for i, line in enumerate(lines):
            if _USAGE_KEY in line:
                lines[i] = self._rewrite_value(line)
        return b"\n".join(lines)

    def _rewrite_document(self, body: bytes) -> bytes:
        value = _loads(body)
        if value is _NOT_JSON:  # not one JSON value: maybe JSON lines after all
            return self._rewrite_lines(body)
        if not self._update(value):
            return body
        stripped = body.rstrip()
        return _dumps(value) + body[len(stripped) :]

    def _rewrite_value(self, line: bytes) -> bytes:
        value = _loads(line)
        if value is _NOT_JSON or not self._update(value):
            return line
        stripped = line.rstrip()
        return _dumps(value) + line[len(stripped) :]

    def _rewrite_events(self, region: bytes) -> bytes:
        out: list[bytes] = []
        start = 0
        for match in _SSE_LINE.finditer(region):
            if match.group(1):
                continue
            end = match.end()
            event = region[start:end]
            out.append(self._rewrite_event(event) if _USAGE_KEY in event else event)
            start = end
        out.append(region[start:])
        return b"".join(out)

    def _rewrite_event(self, event: bytes) -> bytes:
        """Re-emit one SSE event with its (possibly multi-line) data re-serialised."""
        lines: list[tuple[bytes, bytes]] = []
        pos = 0
        for match in _SSE_LINE.finditer(event):
            lines.append((match.group(1), match.group(2)))
            pos = match.end()
        if pos < len(event):
            lines.append((event[pos:], b""))
        data = [_field_value(content) for content, _ in lines if _field_name(content) == b"data"]
        if not data:
            return event
        payload = b"\n".join(data)
        if payload.strip() == b"[DONE]":
            return event
        value = _loads(payload)
        if value is _NOT_JSON or not self._update(value):
            return event
        out: list[bytes] = []
        written = False
        for content, ending in lines:
            if _field_name(content) != b"data":
                out.append(content + ending)
            elif not written:
                out.append(b"data: " + _dumps(value) + ending)
                written = True
        return b"".join(out)

    def _update(self, value: Any) -> bool:
        """Raise the maxima from one parsed value; on any raise, inject the costs into it."""
        if not isinstance(value, dict):
            return False
        usage = value.get("usage")
        if not isinstance(usage, dict):
            return False
        updated = False
        prompt = _count(usage, "prompt_tokens")
        if prompt > self._prompt:
            self._prompt, updated = prompt, True
        cached = _count(usage, "prompt_tokens_details", "cached_tokens")
        if cached > self._cached:
            self._cached, updated = cached, True
        completion = _count(usage, "completion_tokens")
        if completion > self._completion:
            self._completion, updated = completion, True
        reasoning = max(
            _count(usage, "completion_tokens_details", "reasoning_tokens"),
            _count(usage, "reasoning_tokens"),
        )
        if reasoning > self._reasoning:
            self._reasoning, updated = reasoning, True
        if updated:
            usage.update(usage_costs(self.tokens, self._params))
        return updated


def _count(usage: dict[str, Any], *path: str) -> int:
    """A non-negative integer at ``path`` below ``usage``, else 0 (as ``get_json_value``)."""
    node: Any = usage
    for key in path:
        if not isinstance(node, dict):
            return 0
        node = node.get(key)
    if isinstance(node, bool) or not isinstance(node, int) or not 0 <= node <= _MAX_COUNT:
        return 0
    return node


def _last_event_end(buf: bytes) -> int:
    """Offset just past the last complete SSE event in ``buf`` (0 if there is none)."""
    cut = 0
    for end in _SSE_EVENT_ENDS:
        found = buf.rfind(end)
        if found >= 0:
            cut = max(cut, found + len(end))
    return cut


def _field_name(line: bytes) -> bytes:
    return line.split(b":", 1)[0]


def _field_value(line: bytes) -> bytes:
    _, _, value = line.partition(b":")
    return value[1:] if value.startswith(b" ") else value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(data: bytes) -> Any:
    """Parse strict JSON (no NaN/Infinity); ``_NOT_JSON`` when it is not JSON."""
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape: keep it escaped
        return json.dumps(value, separators=(",", ":")).encode("ascii")
