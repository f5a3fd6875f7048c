"""The engine child's command-line contract (shared with ``EngineSupervisor``), validated."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Hard ceilings that keep one request from occupying a slot (or memory) unreasonably.
MAX_PARALLEL = 64
MAX_CTX = 1 << 20
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Validated command-line options of one engine child.

    ``ctx`` is the context window of *each* parallel slot (so a request may use up to ``ctx``
    tokens, prompt plus answer); the KV cache holds ``ctx × parallel`` tokens in total.
    The API key is read from ``api_key_file`` at start and never kept in this object.
    """

    model: Path
    model_alias: str
    ctx: int
    parallel: int
    threads: int
    gpu_layers: int
    batch: int
    uds: Path | None
    host: str | None
    port: int | None
    api_key_file: Path | None
    max_queue: int
    max_body_bytes: int
    shutdown_grace: float


class OptionsError(ValueError):
    """The command line is unusable; the message names the option (never a secret)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.engine.server",
        description="OpenAI-compatible llama.cpp server with continuous batching.",
    )
    parser.add_argument("--model", type=Path, required=True, help="GGUF model file")
    parser.add_argument(
        "--alias", default=None, help="model name served in /v1/models (default: file stem)"
    )
    parser.add_argument("--ctx", type=int, default=4096, help="context tokens per parallel slot")
    parser.add_argument("--parallel", type=int, default=4, help="requests decoded together")
    parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--gpu-layers", type=int, default=0, help="layers offloaded (-1: all)")
    parser.add_argument("--batch", type=int, default=512, help="tokens per decode step, at most")
    parser.add_argument("--uds", type=Path, default=None, help="listen on this Unix socket")
    parser.add_argument("--host", default=None, help="listen on this loopback address")
    parser.add_argument("--port", type=int, default=None, help="TCP port (0: pick a free one)")
    parser.add_argument(
        "--api-key-file", type=Path, default=None, help="file whose content is the Bearer key"
    )
    parser.add_argument("--max-queue", type=int, default=None, help="waiting requests, at most")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument(
        "--shutdown-grace", type=float, default=3.0, help="seconds in-flight requests get on stop"
    )
    return parser


def parse_options(argv: Sequence[str] | None = None) -> ServerOptions:
    """Parse and validate ``argv``; raises :class:`OptionsError` with a plain reason."""
    args = build_parser().parse_args(argv)
    _check_range("--ctx", args.ctx, 16, MAX_CTX)
    _check_range("--parallel", args.parallel, 1, MAX_PARALLEL)
    _check_range("--threads", args.threads, 1, 1024)
    _check_range("--gpu-layers", args.gpu_layers, -1, 100_000)
    _check_range("--batch", args.batch, 16, 65_536)
    _check_range("--max-body-bytes", args.max_body_bytes, 1024, 1 << 30)
    if not 0 <= args.shutdown_grace <= 60:
        raise OptionsError("--shutdown-grace must be between 0 and 60 seconds")
    if not args.model.is_file():
        raise OptionsError(f"--model {args.model} is not a file")
    max_queue = args.max_queue if args.max_queue is not None else 4 * args.parallel
    _check_range("--max-queue", max_queue, 0, 100_000)
    if args.uds is not None:
        if args.host is not None or args.port is not None or args.api_key_file is not None:
            raise OptionsError("--uds cannot be combined with --host/--port/--api-key-file")
    else:
        if args.host is None or args.port is None or args.api_key_file is None:
            raise OptionsError("give either --uds PATH or all of --host, --port, --api-key-file")
        if args.host not in {"127.0.0.1", "::1", "localhost"}:
            raise OptionsError("--host must be a loopback address (127.0.0.1 or ::1)")
        _check_range("--port", args.port, 0, 65_535)
    alias = args.alias or args.model.stem
    return ServerOptions(
        model=args.model,
        model_alias=alias,
        ctx=args.ctx,
        parallel=args.parallel,
        threads=args.threads,
        gpu_layers=args.gpu_layers,
        batch=args.batch,
        uds=args.uds,
        host=args.host,
        port=args.port,
        api_key_file=args.api_key_file,
        max_queue=max_queue,
        max_body_bytes=args.max_body_bytes,
        shutdown_grace=args.shutdown_grace,
    )


def read_api_key(path: Path) -> str:
    """The Bearer key: the file's content without surrounding whitespace (must not be empty)."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise OptionsError(f"cannot read --api-key-file {path}") from exc
    if len(key) < 16:
        raise OptionsError(f"--api-key-file {path} holds no usable key (16+ characters)")
    return key


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise OptionsError(f"{name} must be between {low} and {high}, got {value}")
