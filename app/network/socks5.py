"""SOCKS5 CONNECT (no auth, IPv4 only) to a proxy through the local COCOON router.

See docs/protocol.md §2.2.

Works on a raw non-blocking socket so the caller can read the router's ``AttestedPeerInfo``
record byte-exactly afterwards and then hand the socket to an asyncio transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct

from app.network.peer_info import recv_exactly

_REPLY_MESSAGES = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


class Socks5Error(ConnectionError):
    """The router refused or garbled the SOCKS5 exchange."""


async def socks5_connect(
    router: tuple[str, int],
    target: tuple[str, int],
    *,
    timeout: float = 30.0,  # noqa: ASYNC109
) -> tuple[socket.socket, tuple[str, int]]:
    """Connect to ``router`` and ask it to CONNECT to IPv4 ``target``.

    Returns the connected non-blocking socket and the bound address the router reported.
    The target must be an IPv4 literal: the COCOON router rejects names and IPv6.
    """
    try:
        address = ipaddress.IPv4Address(target[0])
    except ValueError as exc:
        raise Socks5Error(f"SOCKS5 target must be an IPv4 address, got {target[0]!r}") from exc
    if not 0 < target[1] < 65536:
        raise Socks5Error(f"SOCKS5 target port {target[1]} is out of range")
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(router[0], router[1], type=socket.SOCK_STREAM)
    if not infos:
        raise Socks5Error(f"cannot resolve the router address {router[0]}")
    family, type_, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, type_, proto)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(_handshake(loop, sock, sockaddr, address.packed, target[1]), timeout)
        bound = await asyncio.wait_for(_read_reply(loop, sock), timeout)
    except BaseException:
        with contextlib.suppress(OSError):
            sock.close()
        raise
    return sock, bound


async def _handshake(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    sockaddr: tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes],
    ip: bytes,
    port: int,
) -> None:
    await loop.sock_connect(sock, sockaddr)
    await loop.sock_sendall(sock, b"\x05\x01\x00")
    version, method = await recv_exactly(loop, sock, 2)
    if version != 5:
        raise Socks5Error(f"router answered SOCKS version {version}")
    if method != 0:
        raise Socks5Error("router requires SOCKS5 authentication, which is not supported")
    await loop.sock_sendall(sock, b"\x05\x01\x00\x01" + ip + struct.pack(">H", port))


async def _read_reply(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> tuple[str, int]:
    version, rep, _, atyp = await recv_exactly(loop, sock, 4)
    if version != 5:
        raise Socks5Error(f"router answered SOCKS version {version}")
    if rep != 0:
        raise Socks5Error(f"router refused the connection: {_REPLY_MESSAGES.get(rep, rep)}")
    if atyp == 1:
        host = str(ipaddress.IPv4Address(await recv_exactly(loop, sock, 4)))
    elif atyp == 4:
        host = str(ipaddress.IPv6Address(await recv_exactly(loop, sock, 16)))
    elif atyp == 3:
        (size,) = await recv_exactly(loop, sock, 1)
        host = (await recv_exactly(loop, sock, size)).decode("ascii", "replace")
    else:
        raise Socks5Error(f"router answered with unknown address type {atyp}")
    (bound_port,) = struct.unpack(">H", await recv_exactly(loop, sock, 2))
    return host, int(bound_port)
