"""WorkerConfig validation: every bad setting gets a clear, user-facing error."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.errors import UserFacingError
from app.network.worker_config import (
    ProxyAddress,
    WorkerConfig,
    WorkerConfigError,
    parse_host_port,
    parse_model,
)

OWNER = "UQAuz15H1ZHrZ_psVrAra7HealMIVeFq0wguqlmFno1f3B-m"
OWNER_RAW = "0:2ecf5e47d591eb67fa6c56b02b6bb1de6a530855e16ad3082eaa59859e8d5fdc"


def _config(**changes: Any) -> WorkerConfig:
    values: dict[str, Any] = {
        "proxies": ["127.0.0.1:11001"],
        "model": "Qwen/Qwen3-8B@abc:def",
        "owner_address": OWNER,
    }
    values.update(changes)
    return WorkerConfig.from_strings(**values)


def test_good_config_and_derived_values() -> None:
    config = _config(proxies=[" 127.0.0.1:11001 ", "[::1]:9"], router_socks5="")
    assert config.proxies == (ProxyAddress("127.0.0.1", 11001), ProxyAddress("::1", 9))
    assert config.base_model == "Qwen/Qwen3-8B"
    assert config.router_socks5 is None
    assert (config.coefficient, config.max_active_requests, config.is_test) == (1000, 200, True)


def test_owner_address_is_sent_non_bounceable() -> None:
    assert _config(owner_address=OWNER_RAW).owner_address_friendly == OWNER
    bounceable = "EQAuz15H1ZHrZ_psVrAra7HealMIVeFq0wguqlmFno1f3EJj"
    assert _config(owner_address=bounceable).owner_address_friendly == OWNER


def test_model_names() -> None:
    assert parse_model("Qwen/Qwen3-8B") == ("Qwen/Qwen3-8B", None)
    assert parse_model("a@c1:v2") == ("a", "c1:v2")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"proxies": []}, "No proxy to connect to"),
        ({"proxies": ["localhost"]}, "not a valid proxy address"),
        ({"proxies": [":80"]}, "not a valid proxy address"),
        ({"proxies": ["1.2.3.4:0"]}, "from 1 to 65535"),
        ({"proxies": ["1.2.3.4:70000"]}, "from 1 to 65535"),
        ({"proxies": ["1.2.3.4:http"]}, "from 1 to 65535"),
        ({"proxies": ["a b:1"]}, "contains spaces"),
        ({"model": ""}, "No model is set"),
        ({"model": "Qwen@commit"}, "is not a model name"),
        ({"model": "Qwen@a:b@c:d"}, "is not a model name"),
        ({"model": "has space"}, "is not a model name"),
        ({"owner_address": ""}, "No owner address"),
        ({"owner_address": "UQ-not-an-address"}, "is not a TON address"),
        ({"max_active_requests": 0}, "Max active requests"),
        ({"coefficient": -1}, "price coefficient"),
        ({"coefficient": 10**9}, "price coefficient"),
        ({"proxy_connections": 0}, "Proxy connections"),
        ({"proxy_connections": 33}, "Proxy connections"),
        ({"router_socks5": "nowhere"}, "router SOCKS5 address"),
        ({"router_socks5": "127.0.0.1:8116", "proxies": ["proxy.example:1"]}, "IPv4"),
    ],
)
def test_bad_settings_are_user_facing_errors(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkerConfigError, match=message) as err:
        _config(**changes)
    assert isinstance(err.value, UserFacingError)
    assert err.value.describe()


def test_host_port_error_names_the_setting() -> None:
    with pytest.raises(WorkerConfigError, match="router SOCKS5 address"):
        parse_host_port("x", what="router SOCKS5 address")
