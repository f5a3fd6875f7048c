"""Engine overhead: the supervised, sandboxed engine over its socket versus llama.cpp direct.

Two comparisons in one run, on the bundled SmolLM2-135M Q4_1 model and the same prompts:

1. concurrency 1 — per-request generation tokens/s through the engine child (Unix socket, HTTP,
   SSE; with ``--supervised`` under ``EngineSupervisor`` in its sandbox) versus
   ``llama_cpp.Llama`` in this process (target ratio ≥ 0.95);
2. concurrency 8 — the engine's aggregate generated tokens/s with 8 slots versus llama.cpp's own
   ``llama-server`` with 8 parallel slots (target ratio ≥ 0.9; skipped without ``--llama-server``,
   see ``installers/llama-server/build.sh``).

Rounds alternate between the two sides so that load from elsewhere on the machine hits both.
Usage: ``.venv/bin/python -m benchmarks.engine_overhead [--llama-server PATH] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from app.engine.catalog import bundled_model_path, load_catalog
from app.engine.endpoint import BackendEndpoint
from app.engine.server.launcher import launched_engine
from app.engine.sizing import EngineLaunch
from app.engine.throughput import (
    STANDARD_PROMPTS,
    LoadRound,
    free_port,
    open_session,
    run_round,
    running_server,
)

CTX = 512
SLOTS = 8


def bundled_model() -> Path:
    return bundled_model_path(load_catalog().default)


def machine() -> str:
    return (
        f"{os.cpu_count()} cores {platform.machine()}, no GPU, Python {platform.python_version()}"
    )


def decode_tps(tokens: int, first: float, last: float) -> float:
    """Generation speed of one request: tokens after the first over the time they took."""
    return (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0


def in_process_round(llm: Any, prompts: Sequence[str], max_tokens: int) -> list[float]:
    rates = []
    for prompt in prompts:
        fresh = f"[{secrets.token_hex(4)}] {prompt}"  # same cache-defeating opening as the engine
        started = time.perf_counter()
        first = last = started
        tokens = 0
        for chunk in llm.create_completion(
            fresh, max_tokens=max_tokens, temperature=0.0, stream=True
        ):
            if chunk["choices"][0]["text"]:
                tokens += 1
                last = time.perf_counter()
                first = first if tokens > 1 else last
        rates.append(decode_tps(tokens, first, last))
    return rates


def engine_rates(load: LoadRound) -> list[float]:
    return [
        decode_tps(s.completion_tokens, s.ttft_s, s.total_s)
        for s in load.samples
        if s.completion_tokens > 1
    ]


@contextlib.asynccontextmanager
async def engine(
    args: argparse.Namespace, parallel: int, work: Path
) -> AsyncIterator[BackendEndpoint]:
    """The engine child: under ``EngineSupervisor`` in its sandbox, or launched directly."""
    launch = EngineLaunch(
        model_name="smollm2",
        model_path=bundled_model(),
        context_length=CTX,
        parallel=parallel,
        threads=args.threads,
        gpu_index=None,
        gpu_layers=0,
        batch_size=512,
        address_space_limit=None,
    )
    (work / "run").mkdir(exist_ok=True)
    if not args.supervised:
        async with launched_engine(launch, work / "run") as (endpoint, _):
            yield endpoint
        return

    from app.engine.sandbox import detect_sandbox
    from app.engine.supervisor import EngineSupervisor

    report = detect_sandbox()
    print(f"sandbox: {report.level} ({report.reason})", file=sys.stderr)
    supervisor = EngineSupervisor(
        launch, run_dir=work / "run", log_dir=work / "logs", sandbox=report
    )
    await supervisor.start()
    try:
        yield await supervisor.wait_ready()
    finally:
        await supervisor.aclose()


async def single_stream(args: argparse.Namespace, work: Path) -> tuple[float, float]:
    from llama_cpp import Llama

    prompts = STANDARD_PROMPTS[: args.prompts]
    llm = Llama(
        model_path=str(bundled_model()),
        n_ctx=CTX,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        verbose=False,
    )
    direct: list[float] = []
    ours: list[float] = []
    async with engine(args, 1, work) as endpoint, open_session(endpoint, 1) as session:
        await run_round(session, prompts, concurrency=1, requests=1, max_tokens=8)  # warm-up
        in_process_round(llm, prompts[:1], 8)
        for repeat in range(args.repeats):
            print(f"c=1 repeat {repeat + 1}/{args.repeats}", file=sys.stderr)
            direct += await asyncio.to_thread(in_process_round, llm, prompts, args.max_tokens)
            load = await run_round(
                session, prompts, concurrency=1, requests=len(prompts), max_tokens=args.max_tokens
            )
            ours += engine_rates(load)
    return statistics.median(ours), statistics.median(direct)


async def eight_streams(args: argparse.Namespace, work: Path) -> tuple[float, float] | None:
    if args.llama_server is None or not args.llama_server.exists():
        print("no --llama-server binary: the c=8 comparison is skipped", file=sys.stderr)
        return None
    key_file = work / "key"
    key_file.write_text(secrets.token_urlsafe(24))
    port = free_port()
    reference = BackendEndpoint(base_url=f"http://127.0.0.1:{port}", api_key=key_file.read_text())
    command = [
        str(args.llama_server),
        "-m",
        str(bundled_model()),
        "-c",
        str(CTX * SLOTS),
        "-np",
        str(SLOTS),
        "-t",
        str(args.threads),
        "-tb",
        str(args.threads),
        "--api-key-file",
        str(key_file),
        "--no-webui",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    ours: list[float] = []
    theirs: list[float] = []
    async with (
        engine(args, SLOTS, work) as endpoint,
        running_server(command, reference),
        open_session(endpoint, SLOTS) as mine,
        open_session(reference, SLOTS) as ref,
    ):
        for session in (mine, ref):
            await run_round(session, STANDARD_PROMPTS, concurrency=1, requests=1, max_tokens=8)
        for repeat in range(args.repeats):
            print(f"c=8 repeat {repeat + 1}/{args.repeats}", file=sys.stderr)
            for session, sink in ((mine, ours), (ref, theirs)):
                load = await run_round(
                    session,
                    STANDARD_PROMPTS,
                    concurrency=SLOTS,
                    requests=SLOTS * 2,
                    max_tokens=args.max_tokens,
                )
                sink.append(load.generation_tps)
    return statistics.median(ours), statistics.median(theirs)


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=4, help="prompts per c=1 repeat")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--llama-server", type=Path, default=None)
    parser.add_argument(
        "--supervised", action="store_true", help="run the engine under EngineSupervisor (sandbox)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cocoon-overhead-") as tmp:
        work = Path(tmp)
        ours_c1, direct = await single_stream(args, work)
        batched = await eight_streams(args, work)
    print(f"Machine: {machine()}")
    print(
        f"Model: SmolLM2-135M-Instruct Q4_1, ctx {CTX}, {args.threads} threads, "
        f"max_tokens {args.max_tokens}, medians of {args.repeats} repeats"
    )
    where = "supervised, sandboxed" if args.supervised else "child process"
    print(
        f"c=1 generation tok/s  engine ({where}, socket): {ours_c1:.1f}  "
        f"llama_cpp.Llama in-process: {direct:.1f}  ratio {ours_c1 / direct:.2f} (target ≥ 0.95)"
    )
    if batched is not None:
        ours, theirs = batched
        print(
            f"c=8 aggregate tok/s   engine: {ours:.1f}  llama-server -np 8: {theirs:.1f}  "
            f"ratio {ours / theirs:.2f} (target ≥ 0.9)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
