"""How the worker reaches a proxy: the router leg itself (proof of work, then RA-TLS, as a local
COCOON router would), SOCKS5 via a local router, or plain TCP (the built-in local network).

:func:`open_connection` attaches a dialling :class:`Connection` and waits for ``tcp.connected``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable

from app.network.connection import Connection, Keepalive, PacketCallback, QueryCallback
from app.network.peer_info import read_peer_info
from app.network.proxy_session import Dialer
from app.network.ratls import RaTlsError, client_context, make_identity, upgrade
from app.network.socks5 import socks5_connect
from app.network.tcp_pow import PowError, client_handshake
from app.network.worker_config import ProxyAddress

_log = logging.getLogger(__name__)
_PROGRESS_EVERY_S = 5.0


def dialer_for(*, router_socks5: ProxyAddress | None, router_leg: str) -> Dialer:
    """How proxies are reached: a local router's SOCKS5 port, the router leg with that policy,
    or (neither) plain TCP — the built-in local network and loopback test proxies."""
    if router_socks5 is not None:
        return router_dialer(router_socks5)
    if router_leg:
        return router_leg_dialer(policy=router_leg)
    return direct_dialer()


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


def router_leg_dialer(
    *, policy: str = "any", require: str = "any", timeout: float = 30.0
) -> Dialer:
    """Dial a router-fronted proxy port directly: proof of work, mutual TLS 1.3 with a per-run
    attested identity (docs/protocol.md §2.4), then the runner framing inside the tunnel.

    ``policy`` is what we present (the proxy router's port policy decides what it accepts:
    ``fake_tdx`` wants our certificate to carry a fake quote); ``require`` is what we demand of
    the proxy router's certificate (test networks' routers carry no quote: ``any``).

    Each step fails with its own plain reason ("proof of work: …", "TLS: …"); the session
    reports it and the worker retries with backoff. No ``AttestedPeerInfo`` comes from a remote
    router: the peer's attestation is what its certificate carries.
    """
    identity = make_identity(policy)  # one key and certificate per run, as the reference
    context = client_context(identity)

    async def dial(
        target: ProxyAddress, on_packet: PacketCallback, keepalive: Keepalive
    ) -> Connection:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(target.host, target.port), timeout
            )
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(f"TCP: {str(exc) or type(exc).__name__}") from exc
        try:
            try:
                solved = await client_handshake(
                    reader, writer, timeout=timeout, progress=_solve_progress(target)
                )
            except (PowError, OSError, asyncio.IncompleteReadError) as exc:
                raise ConnectionError(f"proof of work: {exc}") from exc
            _log.info(
                "proxy %s: proof of work (difficulty %d) solved in %.2f s",
                target,
                solved.challenge.difficulty,
                solved.seconds,
            )
            try:
                reader, writer, peer = await upgrade(
                    reader, writer, context, policy=require, timeout=timeout
                )
            except RaTlsError as exc:
                raise ConnectionError(f"TLS: {exc}") from exc
            conn = Connection(
                dialer=True, on_packet=on_packet, keepalive=keepalive, name=str(target)
            )
            transport = writer.transport
            transport.set_protocol(conn)
            conn.transport_owner = writer
            conn.connection_made(transport)
            try:
                await asyncio.wait_for(asyncio.shield(conn.ready), timeout)
            except BaseException:
                conn.close("tcp.connected did not arrive in time")
                raise
        except BaseException:
            writer.transport.abort()
            raise
        conn.attestation = peer
        return conn

    return dial


def _solve_progress(target: ProxyAddress) -> Callable[[int], None]:
    """Say how a slow solve is going, every few seconds (a 28-bit one takes about a minute)."""
    started = time.monotonic()
    last = started

    def progress(hashes: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= _PROGRESS_EVERY_S:
            last = now
            _log.info(
                "proxy %s: proof of work: %.1f M hashes tried in %.0f s",
                target,
                hashes / 1e6,
                now - started,
            )

    return progress


async def open_connection(
    *,
    host: str | None = None,
    port: int | None = None,
    sock: socket.socket | None = None,
    on_packet: PacketCallback,
    on_query: QueryCallback | None = None,
    keepalive: Keepalive | None = None,
    ready_timeout: float = 30.0,
    name: str = "proxy",
) -> Connection:
    """Dial (or adopt an already-connected ``sock``) and wait for ``tcp.connected``."""
    loop = asyncio.get_running_loop()

    def factory() -> Connection:
        return Connection(
            dialer=True, on_packet=on_packet, on_query=on_query, keepalive=keepalive, name=name
        )

    if sock is not None:
        _, conn = await loop.create_connection(factory, sock=sock)
    elif host is None or port is None:
        raise ValueError("open_connection needs host and port, or sock")
    else:
        _, conn = await asyncio.wait_for(loop.create_connection(factory, host, port), ready_timeout)
    try:
        await asyncio.wait_for(asyncio.shield(conn.ready), ready_timeout)
    except BaseException:
        conn.close("tcp.connected did not arrive in time")
        raise
    return conn
