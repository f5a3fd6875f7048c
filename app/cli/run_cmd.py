"""``cocoon-provider run``: run the app; ``--headless`` serves without a window and starts earning.

The worker flags override the saved settings for this run only (they are not written back), so an
operator can drive many machines from a script without touching their settings files.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from app.bootstrap import BuildOptions
from app.cli.context import CliContext
from app.cli.launch import launch
from app.cli.secrets import optional_password
from app.core.errors import UserFacingError
from app.core.settings import Settings
from app.wallet.vault import VAULT_SUFFIX


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "run",
        help="run the worker (use --headless on servers)",
        description="Run the app. With --headless: no window, earning starts at once, and a "
        "status line is printed every few seconds; Ctrl-C (SIGINT) or SIGTERM stops cleanly.",
    )
    parser.add_argument("--headless", action="store_true", help="no window: log and print status")
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the wallet password from stdin (headless: creates the devnet wallet when "
        "there is none, and unlocks the node wallet for cash-outs; COCOON_PROVIDER_PASSWORD "
        "works too)",
    )
    parser.add_argument(
        "--status-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between status lines in headless mode (default 5)",
    )
    worker = parser.add_argument_group("worker (override the settings for this run)")
    worker.add_argument(
        "--proxy",
        action="append",
        metavar="HOST:PORT",
        default=None,
        help="a test-mode proxy's worker port; repeat for several",
    )
    worker.add_argument(
        "--backend-url",
        metavar="URL",
        help="your own OpenAI-compatible server instead of the built-in engine",
    )
    worker.add_argument(
        "--model",
        metavar="NAME[@commit:verity]",
        help="the model to serve (catalog name, or what --backend-url serves)",
    )
    worker.add_argument("--owner-address", metavar="ADDR", help="TON address for the earnings")
    worker.add_argument(
        "--max-active-requests",
        type=int,
        metavar="N",
        help="requests served at once (default: the engine's capacity)",
    )
    worker.add_argument(
        "--coefficient",
        metavar="X",
        help="price coefficient, e.g. 1.0 = list price, 1.5 = 50%% more",
    )
    worker.add_argument(
        "--proxy-connections", type=int, metavar="N", help="how many proxies to stay connected to"
    )
    worker.add_argument(
        "--root-config",
        metavar="FILE",
        help="a reference test network's fake-TON root config (JSON): proxies and prices",
    )
    worker.add_argument(
        "--router",
        metavar="HOST:PORT",
        help="a local COCOON router's SOCKS5 address to dial through",
    )
    worker.add_argument(
        "--router-policy",
        choices=("any", "fake_tdx"),
        help="the attestation policy of the router leg to the proxies (default: any)",
    )
    worker.add_argument(
        "--plain-tcp",
        action="store_true",
        default=None,
        help="dial --proxy targets over plain TCP, without the router leg (test proxies on "
        "this machine, such as `cocoon-provider devnet`)",
    )
    worker.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve Prometheus metrics on this port (0 = off; see docs/metrics.md)",
    )
    parser.set_defaults(handler=handle)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a TCP port (0–65535)")
    return port


def handle(args: argparse.Namespace, ctx: CliContext) -> int:
    # The worker flags reach the window too (or headless, when there is no display).
    options = BuildOptions(override=settings_override(args))
    return launch(
        ctx,
        options,
        headless=args.headless,
        status_interval=args.status_interval,
        # Typed twice at a terminal when the first start will create the wallet with it.
        password=lambda: optional_password(
            args.password_stdin, new=not any(ctx.paths.wallets_dir.glob(f"*{VAULT_SUFFIX}"))
        ),
    )


def parse_coefficient(text: str) -> int:
    """``"1.5"`` → 1500 (the protocol's ×1000 integer), exactly, without floats."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise UserFacingError(
            f"'{text}' is not a price coefficient.", hint="Use a number such as 1.0 or 1.25."
        ) from None
    scaled = value * 1000
    if not value.is_finite() or scaled != scaled.to_integral_value() or not 0 <= scaled < 10**9:
        raise UserFacingError(
            f"The price coefficient must be between 0 and 999999.999 with at most 3 decimals, "
            f"got '{text}'."
        )
    return int(scaled)


def settings_override(args: argparse.Namespace) -> Callable[[Settings], Settings]:
    """A function applying the command-line worker flags to a :class:`Settings` copy."""
    coefficient = None if args.coefficient is None else parse_coefficient(args.coefficient)

    # Flag → worker setting, for the flags that are taken as given (None: not on the command line).
    worker_flags = {
        "owner_address": args.owner_address,
        "max_active_requests": args.max_active_requests,
        "coefficient": coefficient,
        "proxy_connections": args.proxy_connections,
        "router_socks5": args.router,
        "router_policy": args.router_policy,
        "plain_tcp": args.plain_tcp,
        "root_config_file": args.root_config,
    }

    def apply(settings: Settings) -> Settings:
        worker, engine = settings.worker, settings.engine
        changes: dict[str, Any] = {k: v for k, v in worker_flags.items() if v is not None}
        if args.proxy:
            changes["proxies"] = tuple(args.proxy)
        engine_changes = {
            key: value
            for key, value in (("backend_url", args.backend_url), ("model", args.model))
            if value is not None
        }
        general = settings.general
        if args.metrics_port is not None:
            general = dataclasses.replace(general, metrics_port=args.metrics_port)
        return dataclasses.replace(
            settings,
            general=general,
            worker=dataclasses.replace(worker, **changes),
            engine=dataclasses.replace(engine, **engine_changes),
        )

    return apply
