"""How the worker reaches a proxy: direct TCP (test-mode proxies) or SOCKS5 via the local router."""

from __future__ import annotations

import contextlib

from app.network.connection import Connection, Keepalive, PacketCallback, open_connection
from app.network.peer_info import read_peer_info
from app.network.proxy_session import Dialer
from app.network.socks5 import socks5_connect
from app.network.worker_config import ProxyAddress


def direct_dialer(*, timeout: float = 30.0) -> Dialer:
    """Plain TCP to the proxy's worker port, as a test-mode proxy on loopback or a LAN accepts."""

    async def dial(
        target: ProxyAddress, on_packet: PacketCallback, keepalive: Keepalive
    ) -> Connection:
        return await open_connection(
            host=target.host,
            port=target.port,
            on_packet=on_packet,
            keepalive=keepalive,
            ready_timeout=timeout,
            name=str(target),
        )

    return dial


def router_dialer(router: ProxyAddress, *, timeout: float = 30.0) -> Dialer:
    """SOCKS5 CONNECT through the local COCOON router, then its ``AttestedPeerInfo`` record."""

    async def dial(
        target: ProxyAddress, on_packet: PacketCallback, keepalive: Keepalive
    ) -> Connection:
        sock, _ = await socks5_connect(
            (router.host, router.port), (target.host, target.port), timeout=timeout
        )
        try:
            peer = await read_peer_info(sock, timeout)
            conn = await open_connection(
                sock=sock,
                on_packet=on_packet,
                keepalive=keepalive,
                ready_timeout=timeout,
                name=str(target),
            )
        except BaseException:
            with contextlib.suppress(OSError):
                sock.close()
            raise
        conn.peer_info = peer
        return conn

    return dial
