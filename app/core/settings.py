"""Typed settings: frozen dataclass sections, their help texts, and strict (de)serialisation.

Secrets never live here: wallet words, keys and passwords belong to the wallet vault.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args, get_origin

from app.core.errors import SettingsError

SCHEMA_VERSION = 2

NetworkName = Literal["devnet", "testnet", "mainnet", "custom"]
WalletVersion = Literal["v5r1", "v4r2"]
RouterPolicy = Literal["any", "fake_tdx"]


def _opt(
    default: Any,
    help_text: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    label: str = "",
    hidden: bool = False,
) -> Any:
    """A settings field: its label and help text for the Settings page, an optional inclusive
    integer range, and ``hidden`` for values the app manages itself (not shown for editing)."""
    meta = {"help": help_text, "min": minimum, "max": maximum, "label": label, "hidden": hidden}
    if isinstance(default, tuple):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class GeneralSettings:
    network: NetworkName = _opt(
        "devnet",
        "Which network to earn on; 'devnet' is the built-in local test network.",
        label="Network",
    )
    start_earning_on_launch: bool = _opt(
        False, "Start earning as soon as the app starts.", label="Start earning when the app starts"
    )
    close_to_tray: bool = _opt(
        True,
        "Closing the window keeps the app running in the tray.",
        label="Keep running in the tray when closed",
    )
    notify_payouts: bool = _opt(
        True,
        "Show a desktop notification when a payout lands in your wallet.",
        label="Notify me when a payout lands",
    )
    metrics_port: int = _opt(
        0,
        "Serve Prometheus metrics (/metrics, /status.json) on this TCP port; 0 = off.",
        minimum=0,
        maximum=65535,
        label="Metrics port",
    )
    metrics_bind: str = _opt(
        "127.0.0.1",
        "Address the metrics endpoint listens on; any address but loopback needs a bearer token "
        "(COCOON_PROVIDER_METRICS_TOKEN or the system keyring).",
        label="Metrics address",
    )


@dataclass(frozen=True, slots=True)
class EngineSettings:
    model: str = _opt(
        "", "Model to serve (catalog name); empty picks the best that fits.", label="Model"
    )
    backend_url: str = _opt(
        "",
        "Use your own OpenAI-compatible server instead of the built-in engine (URL).",
        label="Your own server (URL)",
    )
    gpu_indices: tuple[int, ...] = _opt(
        (), "GPUs to use (NVML indices); empty means all.", label="GPUs to use"
    )
    temperature_cap_c: int = _opt(
        80,
        "Stop taking new requests above this GPU temperature (°C).",
        minimum=50,
        maximum=100,
        label="Temperature cap (°C)",
    )
    power_cap_w: int = _opt(
        0,
        "Stop taking new requests above this power draw (W); 0 = off.",
        minimum=0,
        maximum=2000,
        label="Power cap (W)",
    )
    allow_power_control: bool = _opt(
        False,
        "Let the app lower the GPU power limit (restored on exit).",
        label="Allow lowering the GPU power limit",
    )
    context_length: int = _opt(
        0,
        "Context length per request; 0 chooses from the hardware.",
        minimum=0,
        maximum=1_048_576,
        label="Context length (tokens)",
    )
    electricity_price_nanoton_per_kwh: int = _opt(
        0,
        "Your electricity price in nanotons per kWh, for net profit.",
        minimum=0,
        label="Electricity price (nanotons per kWh)",
    )


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    proxies: tuple[str, ...] = _opt(
        (), "Proxy addresses (host:port) for test-mode networks.", label="Test-mode proxies"
    )
    owner_address: str = _opt(
        "", "TON address that receives your earnings.", label="Owner address (earnings)"
    )
    max_active_requests: int = _opt(
        0,
        "Requests served at once; 0 follows the engine's capacity.",
        minimum=0,
        maximum=10_000,
        label="Requests at once",
    )
    coefficient: int = _opt(
        1000,
        "Price coefficient ×1000 (1000 = list price).",
        minimum=0,
        maximum=1_000_000,
        label="Price coefficient (×1000)",
    )
    proxy_connections: int = _opt(
        1,
        "How many proxies to stay connected to.",
        minimum=1,
        maximum=32,
        label="Proxy connections",
    )
    root_contract_address: str = _opt(
        "", "COCOON root contract (empty = network default).", label="Root contract"
    )
    root_config_file: str = _opt(
        "",
        "A reference test network's fake-TON root config (JSON file), for --network custom.",
        label="Root config file (fake-TON JSON)",
    )
    router_socks5: str = _opt(
        "", "Local COCOON router SOCKS5 address (host:port), if any.", label="Router SOCKS5 address"
    )
    router_policy: RouterPolicy = _opt(
        "any",
        "Attestation policy of the router leg to proxies ('fake_tdx' for test networks that ask "
        "for a fake quote).",
        label="Router attestation policy",
    )
    plain_tcp: bool = _opt(
        False,
        "Dial custom proxies over plain TCP instead of the router leg (proof of work + TLS): "
        "only for test proxies on this machine.",
        label="Plain TCP to proxies (test rigs)",
    )


@dataclass(frozen=True, slots=True)
class WalletSettings:
    active_wallet: str = _opt(
        "", "Id of the wallet shown on the Wallet page.", label="Active wallet", hidden=True
    )
    wallet_version: WalletVersion = _opt(
        "v5r1", "Contract version for new wallets.", label="Wallet version for new wallets"
    )
    auto_lock_minutes: int = _opt(
        15,
        "Lock the wallet after this many idle minutes.",
        minimum=1,
        maximum=1440,
        label="Lock the wallet after (minutes)",
    )
    large_first_send_nanoton: int = _opt(
        10_000_000_000,
        "Warn before a first send to a new address above this (nanotons).",
        minimum=0,
        label="Warn on a first send above (nanotons)",
    )
    ton_config_file: str = _opt(
        "",
        "Your own TON global config (liteservers) for testnet/mainnet; empty: a fresh copy "
        "from ton.org, else the one shipped with the app.",
        label="TON config file",
    )


@dataclass(frozen=True, slots=True)
class PayoutSettings:
    """When earnings are cashed out from the worker contracts into the owner's wallet."""

    auto_cashout: bool = _opt(
        True,
        "Cash out a proxy's earnings automatically (threshold and fee limit below).",
        label="Cash out automatically",
    )
    threshold_nanoton: int = _opt(
        1_000_000_000,
        "Cash out once a proxy owes at least this much (nanotons; 1 TON = 10^9).",
        minimum=0,
        label="Cash out from (nanotons)",
    )
    max_fee_percent: int = _opt(
        5,
        "Wait while the network fee would be more than this share of the amount.",
        minimum=1,
        maximum=100,
        label="Largest fee share (%)",
    )
    exposure_cap_nanoton: int = _opt(
        50_000_000_000,
        "Stop taking work from a proxy that owes more than this (nanotons); 0 = no cap.",
        minimum=0,
        label="Most a proxy may owe (nanotons)",
    )
    check_every_s: int = _opt(
        60,
        "How often the cash-out policy looks at what proxies owe (seconds).",
        minimum=1,
        maximum=86_400,
        label="Check every (seconds)",
    )


@dataclass(frozen=True, slots=True)
class DevnetSettings:
    demand_requests_per_minute: int = _opt(
        12,
        "Simulated client requests per minute on the local network.",
        minimum=0,
        maximum=6000,
        label="Simulated requests per minute",
    )
    db_commit_every_ms: int = _opt(
        1500,
        "How often the local proxy writes its token tallies (milliseconds; reference 1–2 s).",
        minimum=10,
        maximum=600_000,
        label="Proxy database commit (ms)",
    )
    chain_commit_every_ms: int = _opt(
        45_000,
        "How often the local proxy anchors its tallies on-chain, which is when vouchers grow "
        "(milliseconds; reference 30–60 s).",
        minimum=10,
        maximum=3_600_000,
        label="Proxy on-chain commit (ms)",
    )


@dataclass(frozen=True, slots=True)
class Settings:
    schema_version: int = SCHEMA_VERSION
    general: GeneralSettings = field(default_factory=GeneralSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    wallet: WalletSettings = field(default_factory=WalletSettings)
    payouts: PayoutSettings = field(default_factory=PayoutSettings)
    devnet: DevnetSettings = field(default_factory=DevnetSettings)


SECTIONS: dict[str, type[Any]] = {
    "general": GeneralSettings,
    "engine": EngineSettings,
    "worker": WorkerSettings,
    "wallet": WalletSettings,
    "payouts": PayoutSettings,
    "devnet": DevnetSettings,
}

S = TypeVar("S")


def settings_from_dict(data: dict[str, Any]) -> Settings:
    """Build :class:`Settings` from a current-schema mapping; every problem names its key."""
    unknown = sorted(set(data) - set(SECTIONS) - {"schema_version"})
    if unknown:
        raise SettingsError(
            f"Unknown settings key '{unknown[0]}'.",
            hint="Remove it from settings.toml or fix its spelling.",
        )
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise SettingsError(f"'schema_version' must be {SCHEMA_VERSION}, got {version!r}.")
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            raise SettingsError(f"Settings key '{name}' must be a table (section).")
        sections[name] = section_from_dict(cls, raw, prefix=name)
    return Settings(schema_version=SCHEMA_VERSION, **sections)


def section_from_dict(cls: type[S], raw: dict[str, Any], *, prefix: str) -> S:
    """Validate one section's mapping against its dataclass (types, ranges, unknown keys)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(typing.cast(Any, cls))}
    for key in raw:
        if key not in fields:
            raise SettingsError(
                f"Unknown settings key '{prefix}.{key}'.",
                hint="Remove it from settings.toml or fix its spelling.",
            )
    values: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}.{key}"
        values[key] = _coerce(value, hints[key], dotted)
        _check_range(values[key], fields[key].metadata, dotted)
    return cls(**values)


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    """The TOML-ready mapping (tuples become lists)."""
    out: dict[str, Any] = {"schema_version": settings.schema_version}
    for name in SECTIONS:
        section = getattr(settings, name)
        out[name] = {
            f.name: list(v) if isinstance(v := getattr(section, f.name), tuple) else v
            for f in dataclasses.fields(section)
        }
    return out


def validate(settings: Settings) -> Settings:
    """Re-check a programmatically changed :class:`Settings` exactly as a loaded file would be."""
    return settings_from_dict(settings_to_dict(settings))


def field_help(section: str, key: str) -> str:
    """The help text shown next to a setting in the Settings page."""
    fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
    return str(fields[key].metadata.get("help", ""))


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = get_origin(hint)
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise SettingsError(f"Settings key '{key}' must be one of {choices}, got {value!r}.")
        return value
    if origin is tuple:
        item_type = get_args(hint)[0]
        if not isinstance(value, list | tuple):
            raise SettingsError(f"Settings key '{key}' must be a list, got {_kind(value)}.")
        return tuple(_coerce(item, item_type, f"{key}[{i}]") for i, item in enumerate(value))
    expected = _SCALARS.get(hint)
    if expected is None:  # pragma: no cover - a programming error in a settings section
        raise SettingsError(f"Settings key '{key}' has an unsupported type.")
    # bool is an int subclass: only accept it where a bool is wanted.
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise SettingsError(f"Settings key '{key}' must be {expected}, got {_kind(value)}.")
    return value


_SCALARS: dict[Any, str] = {bool: "true or false", int: "a whole number", str: "text"}


def _check_range(value: Any, meta: Any, key: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        return
    low, high = meta.get("min"), meta.get("max")
    if low is not None and value < low:
        raise SettingsError(f"Settings key '{key}' must be at least {low}, got {value}.")
    if high is not None and value > high:
        raise SettingsError(f"Settings key '{key}' must be at most {high}, got {value}.")


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"
