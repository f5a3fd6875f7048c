"""``cocoon-provider devnet``: the built-in local test network on its own (proxy, client API,
simulated clients), for pointing other workers or apps at it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from app.bootstrap import build_local_network
from app.cli.context import CliContext, CliUsageError
from app.devnet.local_network import LocalNetwork
from app.wallet.chain_factory import open_chain
from app.wallet.simulated_chain import SimulatedChain


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "devnet",
        help="run the local test network alone (test-mode proxy, client API, demand)",
        description="Run the local test network without a worker: COCOON workers in test mode "
        "connect to the proxy port, and apps send OpenAI-style requests to the client API.",
    )
    parser.add_argument("--proxy-port", type=int, default=0, help="workers' port (0: any free)")
    parser.add_argument("--client-port", type=int, default=0, help="client API port (0: any free)")
    parser.add_argument(
        "--demand",
        type=int,
        default=None,
        metavar="PER_MINUTE",
        help="simulated client requests per minute (default: from settings)",
    )
    parser.add_argument("--status-interval", type=float, default=10.0, metavar="SECONDS")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, ctx: CliContext) -> int:
    for port in (args.proxy_port, args.client_port):
        if not 0 <= port < 65536:
            raise CliUsageError(f"{port} is not a port number (0–65535).")
    chain = open_chain("devnet", ctx.paths)
    if not isinstance(chain, SimulatedChain):  # pragma: no cover - devnet is always simulated
        raise CliUsageError("The local network needs its simulated chain.")
    # Its own proxy state: the app's built-in devnet may run at the same time on this machine.
    network = build_local_network(
        ctx.paths,
        ctx.settings.current.value,
        chain,
        state_name="standalone-proxy",
        proxy_port=args.proxy_port,
        client_port=args.client_port,
        demand_per_minute=args.demand,
    )
    return asyncio.run(_serve(network, chain, args.status_interval))


async def _serve(network: LocalNetwork, chain: SimulatedChain, interval: float) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await chain.start()
    try:
        await network.start()
    except OSError as exc:
        await chain.aclose()
        print(f"Error: the local network could not listen: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        status = network.status.value
        print(f"workers connect to: {status.proxy_address}", flush=True)
        print(f"client API:         {status.client_url}/v1/chat/completions", flush=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            network.refresh()
            status = network.status.value
            demand = status.demand
            print(
                f"workers {status.workers} · simulated requests sent {demand.sent}, "
                f"ok {demand.succeeded}, failed {demand.failed}",
                flush=True,
            )
        return 0
    finally:
        await network.aclose()
        await chain.aclose()
