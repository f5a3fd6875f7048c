"""A stand-in engine child for supervisor tests: the engine command-line contract, scripted faults.

Speaks just enough of the OpenAI API (``GET /v1/models``, ``POST /v1/chat/completions``) over a Unix
socket or a loopback port with a Bearer key, announces ``{"event": "ready"}`` like the real server,
and misbehaves on request (``--behaviour``): crash on start, hang, stop answering health checks,
die mid-request, ignore SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def spawn_grandchild() -> None:
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--behaviour", default="ok")
    parser.add_argument("--state-dir", type=Path, default=None)
    for name in ("--model", "--alias", "--api-key-file", "--uds", "--host"):
        parser.add_argument(name)
    for name in ("--ctx", "--parallel", "--threads", "--gpu-layers", "--batch", "--port"):
        parser.add_argument(name, type=int)
    return parser.parse_args()


def build_app(args: argparse.Namespace, key: str | None) -> web.Application:
    calls = {"models": 0}

    async def models(request: web.Request) -> web.Response:
        calls["models"] += 1
        if args.behaviour == "stall-health" and calls["models"] > 1:
            await asyncio.sleep(3600)  # up, but no longer answering: a hung engine
        data = [{"id": args.alias, "object": "model"}]
        # Echoed so tests can check what the supervisor passed (contract, GPU pinning).
        seen = {
            "ctx": args.ctx,
            "parallel": args.parallel,
            "threads": args.threads,
            "gpu_layers": args.gpu_layers,
            "batch": args.batch,
            "model": args.model,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }
        return web.json_response({"object": "list", "data": data, "launch": seen})

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        if args.behaviour == "die-mid-request":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(b'data: {"choices": [{"delta": {"content": "Hel"}}]}\n\n')
            await asyncio.sleep(0.05)
            os._exit(7)
        return web.json_response(
            {
                "object": "chat.completion",
                "model": args.alias,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
        )

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if key is not None and request.headers.get("Authorization") != f"Bearer {key}":
            error = {"error": {"message": "Missing or wrong API key."}}
            return web.json_response(error, status=401)
        return await handler(request)

    app = web.Application(middlewares=[auth])
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    return app


async def serve(args: argparse.Namespace, key: str | None) -> None:
    runner = web.AppRunner(build_app(args, key), access_log=None)
    await runner.setup()
    site: web.BaseSite = (
        web.UnixSite(runner, args.uds) if args.uds else web.TCPSite(runner, args.host, args.port)
    )
    await site.start()
    event: dict[str, object] = {"event": "ready", "parallel": args.parallel, "model": args.alias}
    if not args.uds:
        event["port"] = runner.addresses[0][1]
    out(json.dumps({"event": "loading"}))
    out("a line that is not JSON")
    out(json.dumps(event))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if args.behaviour == "ignore-sigterm":
        loop.add_signal_handler(signal.SIGTERM, lambda: None)
        spawn_grandchild()  # so the test can check that the whole tree is killed
    else:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    if args.behaviour == "crash-once-after-ready" and args.state_dir is not None:
        marker = args.state_dir / "crashed-once"
        if not marker.exists():
            marker.write_text("1")
            err("engine: simulated fatal error after start")
            os._exit(9)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    args = parse()
    err(f"fake engine starting ({args.behaviour})")
    if args.behaviour == "crash-on-start":
        err("error: failed to load model: unsupported tensor type")
        sys.exit(3)
    if args.behaviour == "hang":
        signal.pause()
    key = Path(args.api_key_file).read_text().strip() if args.api_key_file else None
    asyncio.run(serve(args, key))


if __name__ == "__main__":
    main()
