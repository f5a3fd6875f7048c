"""``WorkerConfig``: what the COCOON worker needs to dial proxies, validated for the user."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from pytoniq_core.boc.address import Address

from app.core.errors import UserFacingError

# Reference limits (ProxyInboundWorkerConnection): coefficient in [0, 10^9), capacity >= 1.
MAX_COEFFICIENT = 10**9 - 1
DEFAULT_MAX_ACTIVE_REQUESTS = 200
_MODEL_RE = re.compile(
    r"^(?P<base>[A-Za-z0-9][A-Za-z0-9._\-/]*)(?:@(?P<commit>[^:@\s]+):(?P<verity>[^:@\s]+))?$"
)


class WorkerConfigError(UserFacingError):
    """A worker setting that cannot be used."""


@dataclass(frozen=True, slots=True, order=True)
class ProxyAddress:
    """A proxy's ``host:port``: ``host`` is an IPv4 literal (SOCKS5, and always for the proxies the
    root contract lists) or, in test mode, any host."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


#: Attestation policies of the router leg this app can do itself (``tdx`` needs a TDX VM).
ROUTER_POLICIES = ("any", "fake_tdx")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Everything the worker sends in its handshake and how it reaches proxies.

    ``model`` is the full name (``Qwen/Qwen3-8B@<commit>:<verity>``); clients ask for
    :attr:`base_model`. ``coefficient`` is ×1000 (1000 = list price). How proxies are reached:
    through the local router's SOCKS5 port (``router_socks5``), else the router leg ourselves
    (proof of work + RA-TLS, ``router_leg`` names the attestation policy), else plain TCP (the
    built-in local network and loopback test rigs).
    """

    proxies: tuple[ProxyAddress, ...]
    model: str
    owner_address: str
    max_active_requests: int = DEFAULT_MAX_ACTIVE_REQUESTS
    coefficient: int = 1000
    is_test: bool = True
    is_testnet: bool = False
    proxy_connections: int = 1
    router_socks5: ProxyAddress | None = None
    router_leg: str = ""  # "" plain TCP, or the policy: "any" / "fake_tdx"

    def __post_init__(self) -> None:
        if not self.proxies:
            raise WorkerConfigError(
                "No proxy to connect to.", hint="Add at least one proxy address (HOST:PORT)."
            )
        parse_model(self.model)
        owner_friendly(self.owner_address, testnet=self.is_testnet)
        if not 1 <= self.max_active_requests <= 100_000:
            raise WorkerConfigError(
                f"Max active requests must be between 1 and 100000, got {self.max_active_requests}."
            )
        if not 0 <= self.coefficient <= MAX_COEFFICIENT:
            raise WorkerConfigError(
                f"The price coefficient must be between 0 and {MAX_COEFFICIENT}, "
                f"got {self.coefficient}.",
                hint="It is ×1000: 1000 means list price, 1500 means 1.5×.",
            )
        if not 1 <= self.proxy_connections <= 32:
            raise WorkerConfigError(
                f"Proxy connections must be between 1 and 32, got {self.proxy_connections}."
            )
        if self.router_socks5 is not None:
            for proxy in self.proxies:
                _require_ipv4(proxy)
        if self.router_leg not in ("", *ROUTER_POLICIES):
            raise WorkerConfigError(
                f"Unknown router policy {self.router_leg!r}.",
                hint="Use one of: " + ", ".join(ROUTER_POLICIES) + ".",
            )

    @property
    def base_model(self) -> str:
        return parse_model(self.model)[0]

    @property
    def owner_address_friendly(self) -> str:
        """Non-bounceable user-friendly form, as the handshake sends it."""
        return owner_friendly(self.owner_address, testnet=self.is_testnet)

    @classmethod
    def from_strings(
        cls,
        *,
        proxies: list[str] | tuple[str, ...],
        model: str,
        owner_address: str,
        max_active_requests: int = DEFAULT_MAX_ACTIVE_REQUESTS,
        coefficient: int = 1000,
        is_test: bool = True,
        is_testnet: bool = False,
        proxy_connections: int = 1,
        router_socks5: str = "",
        router_leg: str = "",
    ) -> WorkerConfig:
        """Build from settings-style strings (``HOST:PORT`` lists, empty router = direct)."""
        return cls(
            proxies=tuple(parse_host_port(p, what="proxy address") for p in proxies),
            model=model.strip(),
            owner_address=owner_address.strip(),
            max_active_requests=max_active_requests,
            coefficient=coefficient,
            is_test=is_test,
            is_testnet=is_testnet,
            proxy_connections=proxy_connections,
            router_socks5=(
                parse_host_port(router_socks5, what="router SOCKS5 address")
                if router_socks5.strip()
                else None
            ),
            router_leg=router_leg,
        )


def parse_host_port(text: str, *, what: str) -> ProxyAddress:
    """Parse ``HOST:PORT`` (IPv6 as ``[::1]:PORT``) with a message naming ``what``."""
    cleaned = text.strip()
    host, sep, port_text = cleaned.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text:
        raise WorkerConfigError(
            f"'{cleaned}' is not a valid {what}.",
            hint="Use HOST:PORT, for example 127.0.0.1:11001.",
        )
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise WorkerConfigError(f"The port in {what} '{cleaned}' must be a number from 1 to 65535.")
    if any(ch.isspace() for ch in host):
        raise WorkerConfigError(f"The host in {what} '{cleaned}' contains spaces.")
    return ProxyAddress(host=host, port=int(port_text))


def parse_model(model: str) -> tuple[str, str | None]:
    """Split ``NAME[@commit:verity]`` into the base name and the ``commit:verity`` suffix."""
    match = _MODEL_RE.match(model)
    if match is None:
        raise WorkerConfigError(
            f"'{model}' is not a model name." if model else "No model is set.",
            hint="Use NAME or NAME@COMMIT:VERITY, for example Qwen/Qwen3-8B.",
        )
    suffix = match.group("commit")
    return match.group("base"), (f"{suffix}:{match.group('verity')}" if suffix else None)


def owner_friendly(address: str, *, testnet: bool) -> str:
    """Validate a TON address and return its non-bounceable user-friendly form."""
    if not address:
        raise WorkerConfigError(
            "No owner address is set.", hint="Enter the TON address that receives your earnings."
        )
    try:
        parsed = Address(address)
    except Exception as exc:  # pytoniq_core raises plain AddressError/ValueError/struct errors
        raise WorkerConfigError(
            f"'{address}' is not a TON address.",
            hint="Copy it from your wallet; it looks like UQ… or EQ… (48 characters).",
        ) from exc
    return str(parsed.to_str(is_user_friendly=True, is_bounceable=False, is_test_only=testnet))  # type: ignore[no-untyped-call]


def _require_ipv4(proxy: ProxyAddress) -> None:
    try:
        ipaddress.IPv4Address(proxy.host)
    except ValueError as exc:
        raise WorkerConfigError(
            f"Proxy '{proxy}' must be an IPv4 address when connecting through the router.",
            hint="The COCOON router's SOCKS5 port accepts IPv4 literals only.",
        ) from exc
