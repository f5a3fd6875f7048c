"""Can this computer reach its proxies, and if not, at which step does it fail? (``doctor``)

Each proxy is dialled the way the worker would (SOCKS5 through a local router, the router leg, or
plain TCP) up to the runner framing's ``tcp.connected``, then closed: no handshake is made, so the
proxy sees a connection and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from app.network.connection import DIALER_KEEPALIVE
from app.network.proxy_session import Dialer
from app.network.worker_config import ProxyAddress

CHECK_TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class ProxyCheck:
    address: str
    ok: bool
    detail: str


async def check_proxies(proxies: Sequence[ProxyAddress], dial: Dialer) -> list[ProxyCheck]:
    """Dial each proxy in turn; what worked or the step that failed, in words."""
    return [await _check(proxy, dial) for proxy in proxies]


async def _check(proxy: ProxyAddress, dial: Dialer) -> ProxyCheck:
    try:
        conn = await asyncio.wait_for(
            dial(proxy, lambda _: None, DIALER_KEEPALIVE), CHECK_TIMEOUT_S
        )
    except TimeoutError:
        return ProxyCheck(str(proxy), False, f"no answer within {CHECK_TIMEOUT_S:g} s")
    except (OSError, ValueError) as exc:  # ConnectionError names the step (TCP, proof of work, TLS)
        return ProxyCheck(str(proxy), False, str(exc) or type(exc).__name__)
    attested = conn.attestation
    conn.close("reachability check done")
    await conn.wait_closed()
    if attested is not None:
        how = "proof of work and TLS passed"
        if attested.attested:
            how += f" ({attested.policy} quote verified)"
        return ProxyCheck(str(proxy), True, f"reachable: {how}")
    return ProxyCheck(str(proxy), True, "reachable")
