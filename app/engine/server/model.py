"""The loaded llama.cpp model and context: tokenizing, token pieces and the chat template."""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp import _logger as llama_logger
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from app.engine.server.requests import RequestError

_log = logging.getLogger(__name__)

# Used when a GGUF carries no chat template (ChatML, what most small instruct models expect).
_FALLBACK_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class ModelLoadError(RuntimeError):
    """llama.cpp could not load the model or create its context."""


@dataclass(frozen=True, slots=True)
class ContextShape:
    """How the context is laid out: ``parallel`` slots of ``ctx`` tokens each."""

    ctx: int
    parallel: int
    batch: int
    threads: int
    gpu_layers: int


class LlamaModel:
    """Owns the llama.cpp model, its vocabulary and one context with ``parallel`` sequences.

    Tokenizing and rendering templates are safe from any thread (the vocabulary is read-only);
    :attr:`ctx` and :attr:`memory` are used by the batcher thread only. Call :meth:`close` once.
    """

    def __init__(self, path: Path, shape: ContextShape) -> None:
        llama_logger.set_verbose(False)  # llama.cpp prints only errors, never request data
        llama_cpp.llama_backend_init()
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = shape.gpu_layers if shape.gpu_layers >= 0 else 1_000_000
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), model_params)
        if not self.model:
            raise ModelLoadError(f"llama.cpp could not load the model {path}")
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = shape.ctx * shape.parallel
        params.n_batch = shape.batch
        params.n_ubatch = shape.batch
        params.n_seq_max = shape.parallel
        params.n_threads = shape.threads
        params.n_threads_batch = shape.threads
        # One KV stream per sequence: each request attends only to its own cells, and a slot
        # always has its full ``ctx`` available regardless of what the others hold.
        params.kv_unified = False
        params.no_perf = True
        self.ctx = llama_cpp.llama_init_from_model(self.model, params)
        if not self.ctx:
            llama_cpp.llama_model_free(self.model)
            raise ModelLoadError("llama.cpp could not create a context (out of memory?)")
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self.shape = shape
        self._formatter = self._chat_formatter()
        self._piece_buf = ctypes.create_string_buffer(256)

    def close(self) -> None:
        if self.ctx:
            llama_cpp.llama_free(self.ctx)
            self.ctx = None
        if self.model:
            llama_cpp.llama_model_free(self.model)
            self.model = None

    def tokenize(self, text: str, *, add_special: bool, limit: int) -> list[int]:
        """Tokens of ``text``; raises :class:`RequestError` if there are more than ``limit``."""
        data = text.encode("utf-8", errors="replace")
        capacity = min(len(data) + 8, limit + 1)
        buf = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(
            self.vocab, data, len(data), buf, capacity, add_special, True
        )
        if count < 0 or count > limit:
            raise _too_long(abs(count), limit)
        return list(buf[:count])

    def check_tokens(self, tokens: tuple[int, ...], limit: int) -> list[int]:
        if len(tokens) > limit:
            raise _too_long(len(tokens), limit)
        if any(t >= self.n_vocab for t in tokens):
            raise RequestError(400, "'prompt' holds a token id outside the vocabulary.")
        return list(tokens)

    def render_chat(
        self, messages: tuple[dict[str, Any], ...], *, enable_thinking: bool | None = None
    ) -> str:
        extra = {} if enable_thinking is None else {"enable_thinking": enable_thinking}
        try:
            return self._formatter(messages=list(messages), **extra).prompt  # type: ignore[arg-type]
        except Exception as exc:  # a template rejecting the conversation (e.g. role order)
            raise RequestError(400, "The messages do not fit the model's chat template.") from exc

    def piece(self, token: int) -> bytes:
        """The bytes of one generated token (special tokens render as nothing)."""
        size = llama_cpp.llama_token_to_piece(self.vocab, token, self._piece_buf, 256, 0, False)
        if size < 0:
            buf = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self.vocab, token, buf, -size, 0, False)
            return bytes(buf.raw[:size])
        return bytes(self._piece_buf.raw[:size])

    def is_end(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def _meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        size = llama_cpp.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        if size < 0:
            return None
        if size >= len(buf):
            buf = ctypes.create_string_buffer(size + 1)
            llama_cpp.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace")

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return (llama_cpp.llama_vocab_get_text(self.vocab, token) or b"").decode(errors="replace")

    def _chat_formatter(self) -> Jinja2ChatFormatter:
        template = self._meta("tokenizer.chat_template")
        if template is None:
            _log.info("the model has no chat template; using ChatML")
            template = _FALLBACK_TEMPLATE
        eos = self._token_text(llama_cpp.llama_vocab_eos(self.vocab))
        bos = self._token_text(llama_cpp.llama_vocab_bos(self.vocab))
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)


def _too_long(count: int, limit: int) -> RequestError:
    return RequestError(
        400,
        f"The prompt has {count} tokens or more; this server accepts at most {limit} "
        "(its context size minus one token for the answer).",
        code="context_length_exceeded",
        param="messages",
    )
