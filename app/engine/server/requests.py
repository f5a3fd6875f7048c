"""Parsing and validating OpenAI request bodies into :class:`GenerationRequest` objects."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

MAX_STOP_STRINGS = 8
MAX_STOP_LENGTH = 256
MAX_MESSAGES = 4096

Endpoint = Literal["chat", "completion"]


class RequestError(Exception):
    """A request the server refuses; becomes an OpenAI-style error body with ``status``.

    Messages name fields and limits only, never request content.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Per-request sampling; ``temperature == 0`` means greedy."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repeat_penalty: float = 1.0
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One validated request: either chat ``messages`` or a completion ``prompt``."""

    endpoint: Endpoint
    model: str | None
    messages: tuple[dict[str, Any], ...] = ()
    prompt_text: str | None = None
    prompt_tokens: tuple[int, ...] | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False
    sampling: SamplingParams = field(default_factory=SamplingParams)
    enable_thinking: bool | None = None

    def __repr__(self) -> str:  # prompts are private: never in logs or tracebacks
        return f"GenerationRequest(endpoint={self.endpoint!r}, model={self.model!r}, ...)"


def parse_body(raw: bytes, endpoint: Endpoint) -> GenerationRequest:
    """Decode and validate a request body; raises :class:`RequestError` (HTTP 400) on bad input."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise RequestError(400, "The request body must be a JSON object.")
    model = _optional(body, "model", str)
    if endpoint == "chat":
        messages = _messages(body.get("messages"))
        prompt_text, prompt_tokens = None, None
    else:
        messages = ()
        prompt_text, prompt_tokens = _prompt(body.get("prompt"))
    n = _optional(body, "n", int)
    if n is not None and n != 1:
        raise RequestError(400, "Only n=1 is supported.", param="n")
    _refuse_unsupported(body)
    stream = _optional(body, "stream", bool) or False
    stream_options = _optional(body, "stream_options", dict) or {}
    include_usage = bool(stream_options.get("include_usage", False))
    return GenerationRequest(
        endpoint=endpoint,
        model=model,
        messages=messages,
        prompt_text=prompt_text,
        prompt_tokens=prompt_tokens,
        max_tokens=_max_tokens(body),
        stop=_stop(body.get("stop")),
        stream=stream,
        include_usage=include_usage,
        sampling=_sampling(body),
        enable_thinking=_enable_thinking(body.get("chat_template_kwargs")),
    )


def _enable_thinking(value: object) -> bool | None:
    # The one template option COCOON's worker lets through (for reasoning models such as Qwen3).
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or set(value) - {"enable_thinking"}
        or not isinstance(value.get("enable_thinking", False), bool)
    ):
        raise RequestError(
            400,
            "'chat_template_kwargs' may only hold 'enable_thinking' (true or false).",
            param="chat_template_kwargs",
        )
    thinking = value.get("enable_thinking")
    return thinking if isinstance(thinking, bool) else None


def _refuse_unsupported(body: dict[str, Any]) -> None:
    # Features this engine does not implement are refused rather than silently ignored: a client
    # asking for JSON output or tool calls must not get free text it will fail to parse.
    # (``top_logprobs`` without ``logprobs`` means nothing and is let through, as COCOON's worker
    # forwards it.)
    for name in ("logprobs", "tools", "functions", "logit_bias", "suffix", "echo"):
        if body.get(name) not in (None, False, 0, [], {}):
            raise RequestError(400, f"'{name}' is not supported by this server.", param=name)
    if body.get("best_of") not in (None, 1):
        raise RequestError(400, "Only best_of=1 is supported.", param="best_of")
    response_format = body.get("response_format")
    if response_format is not None and response_format != {"type": "text"}:
        raise RequestError(
            400, "Only the 'text' response_format is supported.", param="response_format"
        )


def _max_tokens(body: dict[str, Any]) -> int | None:
    # Chat clients send max_completion_tokens (the newer name) or max_tokens.
    name = (
        "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    )
    value: int | None = _optional(body, name, int)
    if value is not None and value <= 0:
        raise RequestError(400, f"'{name}' must be a positive integer.", param=name)
    return value


def _messages(value: object) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list) or not value:
        raise RequestError(400, "'messages' must be a non-empty array.", param="messages")
    if len(value) > MAX_MESSAGES:
        raise RequestError(400, f"At most {MAX_MESSAGES} messages.", param="messages")
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(value):
        param = f"messages[{index}]"
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestError(400, f"'{param}' needs a string 'role'.", param=param)
        content = message.get("content")
        if isinstance(content, list):
            content = _text_parts(content, param)
        elif content is not None and not isinstance(content, str):
            raise RequestError(400, f"'{param}.content' must be a string.", param=param)
        messages.append({**message, "content": content or ""})
    return tuple(messages)


def _text_parts(parts: list[Any], param: str) -> str:
    texts: list[str] = []
    for part in parts:
        if not isinstance(part, dict) or part.get("type") != "text":
            raise RequestError(400, f"'{param}.content' may hold text parts only.", param=param)
        text = part.get("text")
        if not isinstance(text, str):
            raise RequestError(400, f"'{param}.content' text parts need 'text'.", param=param)
        texts.append(text)
    return "".join(texts)


def _prompt(value: object) -> tuple[str | None, tuple[int, ...] | None]:
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], (str, list)):
        value = value[0]  # one prompt wrapped in an array
    if isinstance(value, str):
        if not value:
            raise RequestError(400, "'prompt' must not be empty.", param="prompt")
        return value, None
    if isinstance(value, list) and value and all(_is_int(t) and t >= 0 for t in value):
        return None, tuple(value)
    raise RequestError(
        400, "'prompt' must be a non-empty string or an array of token ids.", param="prompt"
    )


def _stop(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if (
        not isinstance(stops, list)
        or len(stops) > MAX_STOP_STRINGS
        or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_LENGTH for s in stops)
    ):
        raise RequestError(
            400,
            f"'stop' must be a string or up to {MAX_STOP_STRINGS} non-empty strings "
            f"of at most {MAX_STOP_LENGTH} characters.",
            param="stop",
        )
    return tuple(stops)


def _sampling(body: dict[str, Any]) -> SamplingParams:
    defaults = SamplingParams()
    seed = _optional(body, "seed", int)
    return SamplingParams(
        temperature=_number(body, "temperature", defaults.temperature, 0.0, 2.0),
        top_p=_number(body, "top_p", defaults.top_p, 0.0, 1.0),
        top_k=int(_number(body, "top_k", defaults.top_k, 0, 1_000_000, integer=True)),
        min_p=_number(body, "min_p", defaults.min_p, 0.0, 1.0),
        presence_penalty=_number(body, "presence_penalty", 0.0, -2.0, 2.0),
        frequency_penalty=_number(body, "frequency_penalty", 0.0, -2.0, 2.0),
        repeat_penalty=_number(body, "repeat_penalty", 1.0, 0.0, 10.0),
        seed=seed & 0xFFFFFFFF if seed is not None else None,
    )


def _number(
    body: dict[str, Any],
    name: str,
    default: float,
    low: float,
    high: float,
    *,
    integer: bool = False,
) -> float:
    value = body.get(name)
    if value is None:
        return default
    valid = _is_int(value) if integer else (_is_int(value) or isinstance(value, float))
    if not valid or not math.isfinite(value) or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise RequestError(400, f"'{name}' must be {kind} from {low} to {high}.", param=name)
    return float(value)


def _optional(body: dict[str, Any], name: str, kind: type[Any]) -> Any:
    value = body.get(name)
    if value is None:
        return None
    ok = _is_int(value) if kind is int else isinstance(value, kind)
    if not ok:
        raise RequestError(400, f"'{name}' must be of type {kind.__name__}.", param=name)
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
