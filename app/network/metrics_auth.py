"""Who may read the metrics endpoint: the bearer token (from ``COCOON_PROVIDER_METRICS_TOKEN`` or
the system keyring), whether a bind address is loopback, and the refusal to serve other computers
without a token."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
from collections.abc import Mapping

import keyring
from keyring.backend import KeyringBackend

from app import APP_NAME
from app.core.errors import UserFacingError
from app.engine.gpu_probe import run_in_daemon_thread

_log = logging.getLogger(__name__)

METRICS_TOKEN_ENV = "COCOON_PROVIDER_METRICS_TOKEN"  # noqa: S105 - a variable name, not a secret
# The keyring entry: service ``cocoon-provider``, user ``metrics-token``.
KEYRING_USER = "metrics-token"
KEYRING_TIMEOUT_S = 5.0


async def read_metrics_token(
    *,
    environ: Mapping[str, str] | None = None,
    backend: KeyringBackend | None = None,
    keyring_timeout_s: float = KEYRING_TIMEOUT_S,
) -> str:
    """The token from the environment, else from the keyring; ``""`` when neither has one.

    A keyring that fails or does not answer in ``keyring_timeout_s`` counts as having none
    (logged, never raised): the caller decides whether serving without a token is allowed.
    """
    env = os.environ if environ is None else environ
    from_env = env.get(METRICS_TOKEN_ENV, "").strip()
    if from_env:
        return from_env

    def read() -> str | None:
        chosen = backend if backend is not None else keyring.get_keyring()
        return chosen.get_password(APP_NAME, KEYRING_USER)

    try:
        stored = await asyncio.wait_for(run_in_daemon_thread(read), keyring_timeout_s)
    except TimeoutError:
        _log.info("the system keyring did not answer for the metrics token")
        return ""
    except Exception as exc:  # no backend, locked, D-Bus missing: no token from there
        _log.info("no metrics token from the system keyring (%s)", type(exc).__name__)
        return ""
    return (stored or "").strip()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this computer (``localhost`` or a loopback IP)."""
    name = host.strip().strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def require_token(bind: str, token: str) -> None:
    """Refuse to expose the endpoint beyond this computer without a token."""
    if token or is_loopback(bind):
        return
    raise UserFacingError(
        f"The metrics endpoint would listen on {bind}, which other computers can reach, but "
        "no metrics token is set.",
        hint=f"Set {METRICS_TOKEN_ENV}, or store a token in the system keyring (service "
        f"'{APP_NAME}', user '{KEYRING_USER}'); or set general.metrics_bind to 127.0.0.1.",
    )


def authorised(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (always, without a token)."""
    if not token:
        return True
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
