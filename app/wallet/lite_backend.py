"""``LiteBackend``: the live ``ChainBackend`` on pytoniq's ``LiteBalancer`` (mainnet / testnet).

Proofs are checked (``trust_level`` 1), every request is bounded by a timeout, the seqno comes
from the proven account state, and pytoniq's errors (some derived from ``BaseException``) are
mapped to the typed errors of ``app.wallet.chain``. Reachability is published on ``online``.
"""

# pytoniq-core ships py.typed but leaves most methods unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from pytoniq.contract.contract import ContractError
from pytoniq.liteclient.balancer import BalancerError, LiteBalancer
from pytoniq.liteclient.client import LiteClientError, LiteServerError, RunGetMethodError
from pytoniq_core.boc.address import Address
from pytoniq_core.proof.check_proof import ProofError

from app.core.money import Nanoton
from app.core.observable import Observable
from app.core.paths import resources_dir
from app.wallet.chain import (
    AccountState,
    AccountStatus,
    ChainError,
    ChainOffline,
    ChainTimeout,
    ChainTransaction,
    GetMethodFailed,
    MessageRejected,
    raw_address,
    wallet_seqno,
)
from app.wallet.chain_decode import decode_transaction

_log = logging.getLogger(__name__)

TRUST_LEVEL: Final = 1
DEFAULT_TIMEOUT_S: Final = 10.0
_PAGE: Final = 16  # liteservers return at most 16 transactions per request
_STATUS: Final[dict[str, AccountStatus]] = {
    "account_uninit": "uninit",
    "account_active": "active",
    "account_frozen": "frozen",
}
# "... External message was not accepted ... exitcode=33": the wallet refused before accepting.
_EXIT_CODE_RE: Final = re.compile(r"exit ?code[=: ]+(-?\d+)", re.IGNORECASE)
_SEQNO_EXIT_CODES: Final = frozenset({33, 133})

T = TypeVar("T")
BalancerFactory = Callable[[dict[str, Any], int, float], Any]


class NetworkConfigError(ChainError):
    """The bundled (or given) global network config is missing or unreadable."""


def load_global_config(network: str, path: Path | None = None) -> dict[str, Any]:
    """Read the shipped ``<network>-global.config.json`` (or ``path``) and check its shape."""
    target = path or resources_dir() / "ton" / f"{network}-global.config.json"
    try:
        config = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NetworkConfigError(
            f"The {network} network configuration is missing ({target}).",
            hint="Reinstall the app, or use the built-in local network (--network devnet).",
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NetworkConfigError(f"The network configuration {target} cannot be read.") from exc
    check_global_config(config, str(target))
    return dict(config)


def check_global_config(config: Any, source: str) -> None:
    """Raise :class:`NetworkConfigError` unless ``config`` has liteservers and a trust anchor."""
    servers = config.get("liteservers") if isinstance(config, dict) else None
    validator = config.get("validator") if isinstance(config, dict) else None
    if not servers or not isinstance(servers, list) or not isinstance(validator, dict):
        raise NetworkConfigError(f"The network configuration {source} lists no liteservers.")


OFFLINE_ENV: Final = "COCOON_PROVIDER_OFFLINE"


def offline() -> bool:
    """Whether the live chain backend may not touch the network (``COCOON_PROVIDER_OFFLINE=1``;
    the test suite sets it so that nothing ever dials public liteservers)."""
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def _only_loopback(config: dict[str, Any]) -> bool:
    # Liteserver IPs are signed 32-bit integers; 127.0.0.0/8 is this machine (test fakes).
    return all((int(s.get("ip", 0)) >> 24) & 0xFF == 127 for s in config.get("liteservers", []))


def _default_factory(config: dict[str, Any], trust_level: int, timeout: float) -> Any:
    if offline() and not _only_loopback(config):
        raise ChainOffline(f"The network is switched off here ({OFFLINE_ENV}=1).")
    return LiteBalancer.from_config(config, trust_level=trust_level, timeout=max(1, int(timeout)))


class LiteBackend:
    """One balancer over the network's liteservers, for the whole app."""

    def __init__(
        self,
        config: dict[str, Any] | Callable[[], dict[str, Any]],
        *,
        trust_level: int = TRUST_LEVEL,
        timeout: float = DEFAULT_TIMEOUT_S,
        connect_timeout: float = 15.0,
        balancer_factory: BalancerFactory = _default_factory,
    ) -> None:
        # A loader defers reading the shipped file to the first connection, so a missing file
        # makes the wallet offline with a clear message instead of stopping the app.
        if isinstance(config, dict):
            check_global_config(config, "the network configuration")
        self._config = config
        self._trust_level = trust_level
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._factory = balancer_factory
        self._balancer: Any = None
        self._started = False
        self._connecting: asyncio.Lock | None = None
        self._online = Observable(False)

    @property
    def online(self) -> Observable[bool]:
        return self._online

    async def start(self) -> None:
        """Connect; an unreachable network is published as offline, not raised."""
        try:
            await self._connect()
        except ChainOffline:
            _log.info("TON network unreachable at start; will retry on demand")
        except NetworkConfigError as exc:
            _log.warning("wallet offline: %s", exc.message)

    async def aclose(self) -> None:
        balancer, started = self._balancer, self._started
        self._balancer, self._started = None, False
        self._online.set(False)
        if balancer is None:
            return
        if not started:
            await self._close_peers(balancer)
            return
        try:
            await asyncio.wait_for(balancer.close_all(), self._timeout)
        except Exception as exc:  # closing must not fail the app's shutdown
            _log.info("liteserver connections did not close cleanly: %s", type(exc).__name__)

    async def _close_peers(self, balancer: Any) -> None:
        # A start-up cut short leaves half-open sockets in pytoniq's clients; close them here.
        for peer in getattr(balancer, "_peers", ()):
            try:
                await asyncio.wait_for(peer.close(), self._timeout)
            except Exception as exc:  # best effort: the socket may be gone already
                _log.debug("closing a liteserver peer failed: %s", type(exc).__name__)

    async def _connect(self) -> Any:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._balancer is None:
                config = self._config if isinstance(self._config, dict) else self._config()
                try:
                    self._balancer = self._factory(config, self._trust_level, self._timeout)
                except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
                    raise NetworkConfigError("The network configuration is not valid.") from exc
                self._started = False
            if not self._started:
                try:
                    await asyncio.wait_for(self._balancer.start_up(), self._connect_timeout)
                except (TimeoutError, OSError, LiteClientError) as exc:
                    self._online.set(False)
                    await self._close_peers(self._balancer)
                    raise ChainOffline() from exc
                self._started = True
            # start_up() returns even when no peer answered; afterwards the balancer's own
            # checker keeps reconnecting, so zero live peers simply means "offline right now".
            if self._balancer.alive_peers_num <= 0:
                self._online.set(False)
                raise ChainOffline()
            self._online.set(True)
            return self._balancer

    async def _call(self, what: str, request: Callable[[Any], Awaitable[T]]) -> T:
        balancer = self._balancer
        if balancer is None or balancer.alive_peers_num <= 0:
            balancer = await self._connect()
        try:
            result = await asyncio.wait_for(request(balancer), self._timeout)
        except TimeoutError as exc:
            raise ChainTimeout(what, self._timeout) from exc
        except BalancerError as exc:
            self._online.set(False)
            raise ChainOffline() from exc
        except (ConnectionError, OSError) as exc:
            self._online.set(False)
            raise ChainOffline() from exc
        except RunGetMethodError:
            raise
        except LiteServerError as exc:
            raise ChainError(f"The liteserver refused to {what}: {exc.message}") from exc
        except LiteClientError as exc:
            raise ChainError(f"Could not {what}: {type(exc).__name__}.") from exc
        except ProofError as exc:
            # The answer does not match the proven block state: a liteserver that lies (or is
            # broken). Nothing it said is used; the next call may reach another one.
            raise ChainError(
                f"A liteserver's answer to '{what}' failed its proof check ({exc}).",
                hint="Nothing from it was used; the app asks again shortly.",
            ) from exc
        except ContractError as exc:  # derives from BaseException in pytoniq
            raise ChainError(f"Could not {what}: {exc}") from exc
        self._online.set(True)
        return result

    # ChainBackend -------------------------------------------------------------------------

    async def get_account_state(self, address: str) -> AccountState:
        raw = raw_address(address)
        account, shard = await self._call(
            "read the account", lambda b: b.raw_get_account_state(Address(raw))
        )
        if account is None:
            return AccountState(raw, Nanoton(0), "nonexist")
        state = account.storage.state
        status = _STATUS.get(state.type_)
        if status is None:
            raise ChainError(f"Unknown account state '{state.type_}' for {raw}.")
        code = data = None
        if status == "active":
            init = state.state_init
            code = bytes(init.code.to_boc()) if init.code is not None else None
            data = bytes(init.data.to_boc()) if init.data is not None else None
        return AccountState(
            address=raw,
            balance=Nanoton(int(account.storage.balance.grams)),
            status=status,
            code=code,
            data=data,
            last_tx_lt=int(shard.last_trans_lt) if shard is not None else 0,
            last_tx_hash=bytes(shard.last_trans_hash) if shard is not None else b"\x00" * 32,
        )

    async def get_seqno(self, address: str) -> int:
        return wallet_seqno(await self.get_account_state(address))

    async def get_server_time(self) -> int:
        answer = await self._call("read the network time", lambda b: b.get_time())
        now = answer.get("now") if isinstance(answer, dict) else answer
        if isinstance(now, bool) or not isinstance(now, int):
            raise ChainError("The liteserver sent an unreadable time.")
        return now

    async def send_boc(self, boc: bytes) -> None:
        try:
            await self._call("send the message", lambda b: b.raw_send_message(boc))
        except ChainError as exc:
            cause = exc.__cause__
            if not isinstance(cause, LiteServerError):
                raise
            text = str(getattr(cause, "message", cause))
            match = _EXIT_CODE_RE.search(text)
            code = int(match.group(1)) if match else None
            raise MessageRejected(
                _short_reason(text), seqno_used=code in _SEQNO_EXIT_CODES, exit_code=code
            ) from cause

    async def get_transactions(
        self,
        address: str,
        limit: int,
        from_lt: int | None = None,
        from_hash: bytes | None = None,
    ) -> list[ChainTransaction]:
        raw = raw_address(address)
        if limit <= 0:
            return []
        if from_lt is None or from_hash is None:
            state = await self.get_account_state(raw)
            from_lt, from_hash = state.last_tx_lt, state.last_tx_hash
        out: list[ChainTransaction] = []
        # Paged by hand: pytoniq's own helper fails on empty pages and nonexistent accounts.
        while from_lt and len(out) < limit:
            count = min(_PAGE, limit - len(out))
            page = await self._call(
                "read the history", _transactions_page(Address(raw), count, from_lt, from_hash)
            )
            if not page:
                break
            out.extend(decode_transaction(tx, raw) for tx in page)
            from_lt, from_hash = out[-1].prev_lt, out[-1].prev_hash
        return out

    async def run_get_method(self, address: str, method: str, stack: list[Any]) -> list[Any]:
        raw = raw_address(address)
        try:
            result = await self._call(
                f"run '{method}'", lambda b: b.run_get_method(Address(raw), method, stack)
            )
        except RunGetMethodError as exc:
            raise GetMethodFailed(method, int(getattr(exc, "exit_code", -1))) from exc
        return list(result)

    async def emulate_fee(self, boc: bytes) -> Nanoton | None:
        del boc  # no local emulator for the live network: callers use their fallback estimate
        return None


def _transactions_page(
    address: Address, count: int, lt: int, tx_hash: bytes
) -> Callable[[Any], Awaitable[list[Any]]]:
    async def request(balancer: Any) -> list[Any]:
        transactions, _blocks = await balancer.raw_get_transactions(address, count, lt, tx_hash)
        return list(transactions)

    return request


def _short_reason(text: str) -> str:
    if "not accepted" in text or _EXIT_CODE_RE.search(text):
        return "the wallet did not accept the message" + (
            f" (exit code {m.group(1)})" if (m := _EXIT_CODE_RE.search(text)) else ""
        )
    return text[:200]
