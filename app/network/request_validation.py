"""Validation and rewriting of a query's OpenAI request, as the reference's ``ValidateRequest.cpp``.

The path picks the allow-list (chat or text completions); unknown fields, wrong types and another
model are refused with 621; streaming requests are rewritten so the backend always reports usage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from app.network.answer import ERROR_PROTOVIOLATION, Headers

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024

Check = Callable[[Any], bool]
# RFC 9110 tokens for names; values without control characters (CR/LF would inject headers).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]{0,8192}")
_MAX_HEADERS = 100


class RequestRejected(Exception):  # noqa: N818 - the name the serving contract uses
    """The request cannot be served; ``code`` and ``message`` go to the proxy as they are.

    Messages name fields and the rule broken, never values from the request (they may be prompts).
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_unsigned(value: Any) -> bool:
    return _is_integer(value) and value >= 0


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _anything(value: Any) -> bool:
    return True


def _penalty(value: Any) -> bool:
    return _is_number(value) and -2 <= value <= 2


def _positive(value: Any) -> bool:
    return _is_integer(value) and value >= 1


# field → (check, message when the check fails). Messages (sic) are the reference's.
_Rule = tuple[Check, str]
_TOKENS_RULE: _Rule = (_is_unsigned, "max_completion_tokens must be a non-negative number")
_COMMON: dict[str, _Rule] = {
    "model": (_is_string, "model must be a string"),
    "frequency_penalty": (_penalty, "frequency_penalty must be a number between -2.0 and 2.0"),
    "max_tokens": _TOKENS_RULE,
    "n": (_positive, "n must be a positive number"),
    "stop": (_anything, ""),
    "stream": (_is_bool, "stream must be a boolean"),
    "temperature": (_is_number, "temperature must be a number"),
    "top_p": (_is_number, "top_p must be a number"),
}
CHAT_FIELDS: dict[str, _Rule] = {
    **_COMMON,
    "messages": (lambda v: isinstance(v, list), "messages must be an array"),
    "max_completion_tokens": _TOKENS_RULE,
    "parallel_tool_calls": (_is_bool, "parallel_tool_calls must be a boolean"),
    "prediction": (_is_number, "prediction must be a number"),
    "presence_penalty": (_is_number, "presence_penalty must be a number"),
    "reasoning_effort": (_is_string, "reasoning_effort must be a string"),
    "response_format": (_anything, ""),
    "top_logprobs": (_is_unsigned, "top_logprobs must be a number"),
    "verbosity": (_is_string, "verbosity must be a string"),
}
COMPLETIONS_FIELDS: dict[str, _Rule] = {
    **_COMMON,
    "prompt": (lambda v: isinstance(v, list | str), "prompt must be an array or a string"),
    "best_of": (_is_unsigned, "best_of must be a number"),
    "echo": (_is_bool, "echo must be a boolean"),
    "presence_penalty": (_is_number, "presence_penalty must be a number"),
    "seed": (_is_integer, "seed must be an integer"),
    "suffix": (_is_bool, "suffix must be a boolean"),
    "skip_special_tokens": (_is_bool, "skip_special_tokens must be a boolean"),
}
_STREAM_OPTIONS = ("include_obfuscation", "include_usage")


def base_model_name(model_name: str) -> str:
    """``name@commit:verity`` → ``name``: what clients ask for and the backend serves."""
    return model_name.split("@", 1)[0]


def request_path(url: str) -> str:
    """Everything from the first ``/`` on, as the reference does: ``http://h/x`` → ``//h/x``."""
    slash = url.find("/")
    return url[slash:] if slash >= 0 else url


def validate_request(
    url: str, payload: bytes, model: str, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> bytes:
    """Return the rewritten JSON body for the backend, or raise :class:`RequestRejected` (621).

    ``model`` is the worker's base model name. The output is compact JSON with sorted keys, as
    the reference's nlohmann ``dump()``.
    """
    path = request_path(url)
    if path == CHAT_PATH:
        fields, required = CHAT_FIELDS, "messages"
    elif path == COMPLETIONS_PATH:
        fields, required = COMPLETIONS_FIELDS, "prompt"
    else:
        raise RequestRejected(ERROR_PROTOVIOLATION, "unsupported method")
    if len(payload) > max_body_bytes:
        raise RequestRejected(
            ERROR_PROTOVIOLATION, f"request body is larger than {max_body_bytes} bytes"
        )
    body = _parse_object(payload)
    _check_fields(body, fields)
    for name in (required, "model"):
        if name not in body:
            raise RequestRejected(ERROR_PROTOVIOLATION, f"missing required field '{name}'")
    if "stream_options" in body and "stream" not in body:
        body["stream"] = True
    if body.get("stream") is True and "stream_options" not in body:
        body["stream_options"] = {"include_usage": True}
    if body["model"] != model:
        raise RequestRejected(ERROR_PROTOVIOLATION, "model name mismatch")
    return _dump(body)


def validate_head(method: str, headers: Headers) -> None:
    """Check what of the request line and headers goes to the backend as it is.

    Only ``POST`` is served (every allowed path is a POST endpoint); header names must be tokens
    and values free of control characters, so nothing can be smuggled into the backend request.
    """
    if method != "POST":
        raise RequestRejected(ERROR_PROTOVIOLATION, "unsupported http method")
    if len(headers) > _MAX_HEADERS:
        raise RequestRejected(ERROR_PROTOVIOLATION, "too many http headers")
    for name, value in headers:
        if _HEADER_NAME.fullmatch(name) is None or _HEADER_VALUE.fullmatch(value) is None:
            raise RequestRejected(ERROR_PROTOVIOLATION, "invalid http header")


def _check_fields(body: dict[str, Any], fields: dict[str, _Rule]) -> None:
    # The reference walks the keys in nlohmann's (sorted) order, so the first error is the same.
    for name in sorted(body):
        value = body[name]
        if name == "stream_options":
            body[name] = _stream_options(value)
        elif name == "chat_template_kwargs" and fields is CHAT_FIELDS:
            _chat_template_kwargs(value)
        elif name in fields:
            check, message = fields[name]
            if not check(value):
                raise RequestRejected(ERROR_PROTOVIOLATION, message)
        else:
            raise RequestRejected(
                ERROR_PROTOVIOLATION, f"unknown option '{_shown(name)}' in request"
            )


def _parse_object(payload: bytes) -> dict[str, Any]:
    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise RequestRejected(ERROR_PROTOVIOLATION, f"duplicate '{_shown(key)}' field")
            result[key] = value
        return result

    try:
        body = json.loads(
            payload.decode("utf-8"),
            object_pairs_hook=unique_keys,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError):
        raise RequestRejected(ERROR_PROTOVIOLATION, "expected json object") from None
    if not isinstance(body, dict):
        raise RequestRejected(ERROR_PROTOVIOLATION, "expected json object")
    return body


def _shown(key: str) -> str:
    """A client-chosen field name as it may appear in an error: short and printable."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in key[:64])
    return cleaned + ("…" if len(key) > 64 else "")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _stream_options(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RequestRejected(ERROR_PROTOVIOLATION, "stream_options must be an object")
    # Forced before the check, as the reference does: usage must always be reported.
    value["include_usage"] = True
    for key, option in value.items():
        if key not in _STREAM_OPTIONS:
            raise RequestRejected(
                ERROR_PROTOVIOLATION, f"unknown option '{_shown(key)}' in stream_options"
            )
        if not _is_bool(option):
            raise RequestRejected(ERROR_PROTOVIOLATION, f"stream_options.{key} must be a boolean")
    return value


def _chat_template_kwargs(value: Any) -> None:
    if not isinstance(value, dict):
        raise RequestRejected(ERROR_PROTOVIOLATION, "chat_template_kwargs must be an object")
    for key, option in value.items():
        if key != "enable_thinking":
            raise RequestRejected(
                ERROR_PROTOVIOLATION,
                f"unknown suboption '{_shown(key)}' in chat_template_kwargs in request",
            )
        if not _is_bool(option):
            raise RequestRejected(
                ERROR_PROTOVIOLATION, "chat_template_kwargs.enable_thinking must be a boolean"
            )


def _dump(body: dict[str, Any]) -> bytes:
    try:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape: keep it escaped
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode("ascii")
