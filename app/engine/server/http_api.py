"""The OpenAI-compatible HTTP API (aiohttp): models, chat and text completions, SSE streaming."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from app.engine.server.batcher import Batcher, Completion, EngineError, Job
from app.engine.server.model import LlamaModel
from app.engine.server.requests import Endpoint, GenerationRequest, RequestError, parse_body

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ENGINE_NAME = "cocoon-batcher"
_INLINE_TOKENIZE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """What the API needs besides the engine: names, limits and the optional Bearer key."""

    model_alias: str
    model_file_name: str
    ctx: int
    max_body_bytes: int
    api_key: str | None = None

    def __repr__(self) -> str:
        return f"ApiConfig(model_alias={self.model_alias!r}, ctx={self.ctx}, api_key=...)"


class OpenAiApi:
    """Request handlers over one :class:`Batcher`; never logs or keeps prompts or answers."""

    def __init__(self, model: LlamaModel, batcher: Batcher, config: ApiConfig) -> None:
        self._model = model
        self._batcher = batcher
        self._config = config
        self._created = int(time.time())

    def build_app(self) -> web.Application:
        app = web.Application(
            client_max_size=self._config.max_body_bytes,
            middlewares=[self._errors_middleware, self._auth_middleware],
        )
        app.router.add_get("/health", self.health)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_post("/v1/completions", self.completions)
        return app

    @web.middleware
    async def _errors_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except RequestError as exc:
            return web.json_response(exc.body(), status=exc.status)
        except web.HTTPRequestEntityTooLarge:
            err = RequestError(
                413, f"The request body exceeds {self._config.max_body_bytes} bytes."
            )
            return web.json_response(err.body(), status=413)
        except web.HTTPException as exc:
            err = RequestError(exc.status, exc.reason)
            return web.json_response(err.body(), status=exc.status)

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        key = self._config.api_key
        if key is not None:
            given = request.headers.get("Authorization", "")
            expected = f"Bearer {key}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                raise RequestError(
                    401, "Missing or wrong API key.", error_type="authentication_error"
                )
        return await handler(request)

    async def health(self, request: web.Request) -> web.Response:
        del request
        active, waiting = self._batcher.load
        body = {"status": "ok", "parallel": self._batcher.parallel, "active": active}
        return web.json_response({**body, "waiting": waiting})

    async def models(self, request: web.Request) -> web.Response:
        del request
        entry = {
            "id": self._config.model_alias,
            "object": "model",
            "created": self._created,
            "owned_by": "local",
            "meta": {"n_ctx": self._config.ctx, "parallel": self._batcher.parallel},
        }
        return web.json_response({"object": "list", "data": [entry]})

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "chat")

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "completion")

    async def _serve(self, request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
        raw = await request.read()
        parsed = parse_body(raw, endpoint)
        self._check_model(parsed.model)
        if len(raw) > _INLINE_TOKENIZE_BYTES:
            # Tokenising megabytes takes a while: keep the event loop serving the other streams.
            prompt = await asyncio.to_thread(self._prompt_tokens, parsed)
        else:
            prompt = self._prompt_tokens(parsed)
        room = self._config.ctx - len(prompt)
        max_tokens = min(parsed.max_tokens or room, room)
        job = self._batcher.submit(prompt, max_tokens, parsed.sampling, parsed.stop)
        try:
            if parsed.stream:
                return await self._stream(request, parsed, job)
            return await self._collect(parsed, job)
        finally:
            job.cancel()  # a no-op once finished; frees the slot if the client went away

    def _check_model(self, name: str | None) -> None:
        allowed = {self._config.model_alias, self._config.model_file_name}
        if name is not None and name not in allowed:
            raise RequestError(
                404,
                f"The model '{name[:200]}' is not served here; use '{self._config.model_alias}'.",
                code="model_not_found",
                param="model",
            )

    def _prompt_tokens(self, parsed: GenerationRequest) -> list[int]:
        limit = self._config.ctx - 1
        if parsed.prompt_tokens is not None:
            return self._model.check_tokens(parsed.prompt_tokens, limit)
        if parsed.endpoint == "chat":
            text = self._model.render_chat(parsed.messages, enable_thinking=parsed.enable_thinking)
        else:
            text = parsed.prompt_text or ""
        return self._model.tokenize(text, add_special=True, limit=limit)

    async def _collect(self, parsed: GenerationRequest, job: Job) -> web.Response:
        parts = [delta async for delta in _job_deltas(job)]
        done = _completion(job)
        text = "".join(parts)
        ident, created = _new_id(parsed.endpoint), int(time.time())
        if parsed.endpoint == "chat":
            message = {"role": "assistant", "content": text}
            choice: dict[str, Any] = {"index": 0, "message": message}
            kind = "chat.completion"
        else:
            choice, kind = {"index": 0, "text": text, "logprobs": None}, "text_completion"
        choice["finish_reason"] = done.finish_reason
        body = {
            "id": ident,
            "object": kind,
            "created": created,
            "model": self._config.model_alias,
            "choices": [choice],
            "usage": _usage(done),
            "timings": _timings(done),
        }
        return web.json_response(body)

    async def _stream(
        self, request: web.Request, parsed: GenerationRequest, job: Job
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        chunks = _ChunkWriter(parsed, self._config.model_alias)
        if parsed.endpoint == "chat":
            await _send(response, chunks.chunk({"role": "assistant", "content": ""}, None))
        try:
            async for delta in _job_deltas(job):
                await _send(response, chunks.chunk(delta, None))
            done = _completion(job)
        except RequestError as exc:
            await _send(response, exc.body())
            await response.write(b"data: [DONE]\n\n")
            return response
        await _send(response, chunks.chunk(None, done.finish_reason))
        if parsed.include_usage:
            await _send(response, chunks.usage_chunk(done))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


class _ChunkWriter:
    """Builds the SSE chunk objects of one streamed answer (same id and timestamp throughout)."""

    def __init__(self, parsed: GenerationRequest, model: str) -> None:
        self._chat = parsed.endpoint == "chat"
        self._include_usage = parsed.include_usage
        self._base: dict[str, Any] = {
            "id": _new_id(parsed.endpoint),
            "object": "chat.completion.chunk" if self._chat else "text_completion",
            "created": int(time.time()),
            "model": model,
        }

    def chunk(self, content: str | dict[str, Any] | None, finish: str | None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0}
        if self._chat:
            if isinstance(content, dict):
                choice["delta"] = content
            else:
                choice["delta"] = {} if content is None else {"content": content}
        else:
            choice["text"] = content if isinstance(content, str) else ""
            choice["logprobs"] = None
        choice["finish_reason"] = finish
        body = {**self._base, "choices": [choice]}
        if self._include_usage:
            body["usage"] = None
        return body

    def usage_chunk(self, done: Completion) -> dict[str, Any]:
        return {**self._base, "choices": [], "usage": _usage(done), "timings": _timings(done)}


async def _job_deltas(job: Job) -> Any:
    try:
        async for delta in job.deltas():
            yield delta
    except EngineError as exc:
        raise RequestError(500, "The inference engine failed.", error_type="server_error") from exc


def _completion(job: Job) -> Completion:
    done = job.completion
    if done is None or (done.finish_reason == "abort" and not job.cancelled):
        raise RequestError(503, "The engine stopped before finishing.", error_type="server_error")
    return done


async def _send(response: web.StreamResponse, body: dict[str, Any]) -> None:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    await response.write(f"data: {data}\n\n".encode())


def _usage(done: Completion) -> dict[str, Any]:
    return {
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "total_tokens": done.prompt_tokens + done.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": done.cached_tokens},
    }


def _timings(done: Completion) -> dict[str, float | int]:
    # Same field names as llama-server, so clients (and our benchmark) read either.
    return {
        "prompt_n": done.prompt_tokens - done.cached_tokens,
        "prompt_ms": round(done.prompt_ms, 3),
        "predicted_n": done.completion_tokens,
        "predicted_ms": round(done.generation_ms, 3),
    }


def _new_id(endpoint: Endpoint) -> str:
    prefix = "chatcmpl" if endpoint == "chat" else "cmpl"
    return f"{prefix}-{uuid.uuid4().hex}"
