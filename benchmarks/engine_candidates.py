"""Engine candidates: aggregate generated tokens/s at concurrency 1, 4 and 8, in one run.

Candidates, each started as its own server process on loopback with the bundled SmolLM2-135M
Q4_1 model and the same per-request context:

* baseline ``llama_cpp.server`` (llama-cpp-python's bundled server, one request at a time);
* (a) ``app.engine.server`` — continuous batching over llama-cpp-python's low-level API;
* (b) llama.cpp's own ``llama-server`` with parallel slots, built by
  ``installers/llama-server/build.sh`` (skipped when the binary is absent: pass ``--llama-server``).

Usage: ``.venv/bin/python -m benchmarks.engine_candidates [--max-tokens 64] [--llama-server PATH]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from app.engine.catalog import bundled_model_path, load_catalog
from app.engine.endpoint import BackendEndpoint
from app.engine.gpu_probe import probe_cpu
from app.engine.throughput import (
    STANDARD_PROMPTS,
    LoadRound,
    free_port,
    open_session,
    run_round,
    running_server,
)

PROMPTS = STANDARD_PROMPTS
CONCURRENCY = (1, 4, 8)
CTX_PER_SLOT = 512
SLOTS = 8


def bundled_model() -> Path:
    return bundled_model_path(load_catalog().default)


def candidate_commands(
    model: Path, port: int, key_file: Path, threads: int, llama_server: Path | None
) -> dict[str, list[str]]:
    py = sys.executable
    common = ["--host", "127.0.0.1", "--port", str(port)]
    commands = {
        "llama_cpp.server (baseline)": [
            py,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--n_ctx",
            str(CTX_PER_SLOT),
            "--n_threads",
            str(threads),
            "--n_threads_batch",
            str(threads),
            *common,
            "--api_key",
            key_file.read_text().strip(),
            "--interrupt_requests",
            "False",
        ],
        "(a) app.engine.server": [
            py,
            "-m",
            "app.engine.server",
            "--model",
            str(model),
            "--ctx",
            str(CTX_PER_SLOT),
            "--parallel",
            str(SLOTS),
            "--threads",
            str(threads),
            *common,
            "--api-key-file",
            str(key_file),
        ],
    }
    if llama_server is not None:
        commands["(b) llama-server"] = [
            str(llama_server),
            "-m",
            str(model),
            "-c",
            str(CTX_PER_SLOT * SLOTS),
            "-np",
            str(SLOTS),
            "-t",
            str(threads),
            "-tb",
            str(threads),
            "--api-key-file",
            str(key_file),
            "--no-webui",
            "--log-disable",
            *common,
        ]
    return commands


async def measure(endpoint: BackendEndpoint, max_tokens: int, rounds: int) -> list[LoadRound]:
    async with open_session(endpoint, max(CONCURRENCY)) as session:
        await run_round(session, PROMPTS, concurrency=1, requests=1, max_tokens=8)  # warm-up
        results = []
        for concurrency in CONCURRENCY:
            results.append(
                await run_round(
                    session,
                    PROMPTS,
                    concurrency=concurrency,
                    requests=concurrency * rounds,
                    max_tokens=max_tokens,
                )
            )
        return results


def machine() -> str:
    cpu = probe_cpu().model
    python = sys.version.split()[0]
    return f"{os.cpu_count()} cores {platform.machine()}, {cpu}, no GPU, Python {python}"


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="requests per concurrent client")
    parser.add_argument("--repeats", type=int, default=3, help="runs of every candidate")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--llama-server", type=Path, default=None)
    args = parser.parse_args(argv)
    model = bundled_model()
    table: dict[str, list[list[LoadRound]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "key"
        key_file.write_text(secrets.token_urlsafe(24))
        key_file.chmod(0o600)
        llama_server = args.llama_server
        if llama_server is not None and not llama_server.exists():
            print(f"no llama-server at {llama_server}: candidate (b) skipped", file=sys.stderr)
            llama_server = None
        names = list(candidate_commands(model, 0, key_file, args.threads, llama_server))
        for repeat in range(args.repeats):
            # Rotate the order so that slow spells from elsewhere do not always hit one candidate.
            order = names[repeat % len(names) :] + names[: repeat % len(names)]
            for name in order:
                port = free_port()
                command = candidate_commands(model, port, key_file, args.threads, llama_server)
                endpoint = BackendEndpoint(
                    base_url=f"http://127.0.0.1:{port}", api_key=key_file.read_text().strip()
                )
                print(f"[{repeat + 1}/{args.repeats}] measuring {name} ...", file=sys.stderr)
                started = time.perf_counter()
                async with running_server(command[name], endpoint):
                    rounds = await measure(endpoint, args.max_tokens, args.rounds)
                table.setdefault(name, []).append(rounds)
                print(f"  done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print_table(table, args)
    return 0


def print_table(table: dict[str, list[list[LoadRound]]], args: argparse.Namespace) -> None:
    def median_tps(runs: list[list[LoadRound]], index: int) -> float:
        return statistics.median(run[index].generation_tps for run in runs)

    def median_ttft_ms(runs: list[list[LoadRound]], index: int) -> float:
        return statistics.median(run[index].median_ttft_s for run in runs) * 1000

    baseline = next(iter(table.values()))
    print(f"Machine: {machine()}")
    print(
        f"Model: SmolLM2-135M-Instruct Q4_1, {CTX_PER_SLOT} ctx per slot, {SLOTS} slots, "
        f"{args.threads} threads"
    )
    print(
        f"Load: greedy streamed /v1/completions, ~75-token uncached prompts, max_tokens "
        f"{args.max_tokens}, {args.rounds} requests per client; medians of {args.repeats} runs"
    )
    header = " | ".join(f"c={c} tok/s (× baseline)" for c in CONCURRENCY)
    print(f"| candidate | {header} | TTFT c=1 / c=8 |")
    print("|---|" + "---|" * (len(CONCURRENCY) + 1))
    last = len(CONCURRENCY) - 1
    for name, runs in table.items():
        cells = [
            f"{median_tps(runs, i):.1f} ({median_tps(runs, i) / median_tps(baseline, i):.2f}×)"
            for i in range(len(CONCURRENCY))
        ]
        ttft = f"{median_ttft_ms(runs, 0):.0f} / {median_ttft_ms(runs, last):.0f} ms"
        print(f"| {name} | {' | '.join(cells)} | {ttft} |")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
