"""``RootConfigWatcher``: re-reads the COCOON root configuration every 30–60 s, publishes
``RootConfigState`` and tells the worker when ``params_version`` or the proxy list moves on
(docs/protocol.md §1.2 item 7, §6.5); also its two sources, the chain and the fake-TON JSON file."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.core.errors import UserFacingError
from app.core.observable import Observable
from app.network.root_config import (
    FAKE_TON_HINT,
    RootConfig,
    RootConfigError,
    parse_fake_ton_config,
    parse_root_config_cell,
)
from app.network.worker_config import ProxyAddress
from app.wallet.addresses import AddressError, parse_address
from app.wallet.chain import AccountState
from app.wallet.contracts import TonNetwork

_log = logging.getLogger(__name__)

#: Reads the root configuration once; raises (preferably a ``UserFacingError``) when it cannot.
ConfigSource = Callable[[], Awaitable[RootConfig]]
#: ``on_change(old, new)``: ``old`` is None for the first configuration the watcher obtains.
ConfigChange = Callable[[RootConfig | None, RootConfig], None]

#: The reference re-reads the root contract every 30–60 s (``BaseRunner::alarm``).
DEFAULT_INTERVAL = (30.0, 60.0)
DEFAULT_READ_TIMEOUT = 30.0
#: A fake-TON JSON with all three contract codes is tens of KiB; far larger is not one.
MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024
_FILE_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class RootConfigState:
    """The configuration in use and how the last read went.

    ``config`` is the last good configuration (None until one was read); ``last_error`` is the
    user text of the last failed read or apply ("" after a good one); ``last_read_at`` is the
    ``clock()`` time of the last read that confirmed ``config``.
    """

    config: RootConfig | None = None
    last_error: str = ""
    last_read_at: float | None = None


class AccountReader(Protocol):
    """The one part of :class:`app.wallet.chain.ChainBackend` the chain source needs."""

    async def get_account_state(self, address: str) -> AccountState: ...


class ProxyTargets(Protocol):
    """The part of :class:`app.network.worker.CocoonWorker` a new root configuration drives."""

    def set_proxies(self, proxies: Sequence[ProxyAddress]) -> None: ...

    def reconnect_all(self, reason: str = ...) -> None: ...


class RootConfigWatcher:
    """Service that keeps :attr:`state` current by calling ``source`` every ``interval`` seconds.

    Like the reference, a read whose ``version`` is older than the one in use is ignored (a
    lagging liteserver); a read with the same or a newer version replaces it, so that an operator's
    edit of a fake-TON file takes effect. ``on_change(old, new)`` runs when there was no
    configuration yet, when ``params_version`` increased or when the proxy list changed. Failed
    reads keep the last good configuration and only set ``last_error``; nothing escapes the task.
    """

    def __init__(
        self,
        source: ConfigSource,
        *,
        on_change: ConfigChange | None = None,
        initial: RootConfig | None = None,
        interval: tuple[float, float] = DEFAULT_INTERVAL,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        low, high = interval
        if not 0 < low <= high:
            raise ValueError(f"interval must satisfy 0 < low <= high, got {interval}")
        if read_timeout <= 0:
            raise ValueError(f"read_timeout must be positive, got {read_timeout}")
        self._source = source
        self._on_change = on_change
        self._interval = interval
        self._read_timeout = read_timeout
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.state: Observable[RootConfigState] = Observable(RootConfigState(config=initial))

    @property
    def running(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        """Start re-reading; the first read happens at once, in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="root-config-watcher")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def refresh(self) -> RootConfigState:
        """Read the configuration now (e.g. a "check now" button); never raises for a bad read."""
        async with self._lock:
            try:
                new = await asyncio.wait_for(self._source(), self._read_timeout)
            except TimeoutError:
                self._failed(
                    f"The root configuration was not read within {self._read_timeout:g} s."
                )
            except UserFacingError as exc:
                self._failed(exc.describe())
            except Exception as exc:
                # A source should raise UserFacingErrors only; anything else is a bug worth a trace.
                text = f"The root configuration could not be read ({type(exc).__name__})."
                self._failed(text, trace=exc)
            else:
                self._adopt(new)
        return self.state.value

    async def _run(self) -> None:
        low, high = self._interval
        while True:
            await self.refresh()
            await self._sleep(self._jitter(low, high))

    def _failed(self, text: str, *, trace: BaseException | None = None) -> None:
        current = self.state.value
        if text != current.last_error:
            # Once per distinct problem: the watcher retries every 30–60 s for as long as it lasts.
            _log.warning(
                "root configuration not updated: %s", text.replace("\n", " "), exc_info=trace
            )
        self.state.set(RootConfigState(current.config, text, current.last_read_at))

    def _adopt(self, new: RootConfig) -> None:
        current = self.state.value
        old = current.config
        if old is not None and new.version < old.version:
            self._failed(
                f"The root configuration read has version {new.version}, older than version "
                f"{old.version} in use; it was ignored."
            )
            return
        error = ""
        if _needs_apply(old, new):
            _log.info(
                "root configuration version %d (params %d, %d proxies)",
                new.version,
                new.params_version,
                len(new.proxy_addresses),
            )
            error = self._apply(old, new)
        elif current.last_error:
            _log.info("root configuration read again")
        self.state.set(RootConfigState(new, error, self._clock()))

    def _apply(self, old: RootConfig | None, new: RootConfig) -> str:
        if self._on_change is None:
            return ""
        try:
            self._on_change(old, new)
        except Exception as exc:
            # The configuration itself is good and is kept; the next change is applied again.
            _log.exception("applying the new root configuration failed")
            detail = exc.describe() if isinstance(exc, UserFacingError) else type(exc).__name__
            return f"The new root configuration could not be applied: {detail}"
        return ""


def _needs_apply(old: RootConfig | None, new: RootConfig) -> bool:
    return (
        old is None
        or new.params_version > old.params_version
        or new.proxy_addresses != old.proxy_addresses
    )


# ---- sources ----


def chain_source(
    chain: AccountReader, root_address: str, *, is_test: bool | None = None
) -> ConfigSource:
    """Read the root contract's proven account data through the wallet's chain interface.

    With ``is_test`` set, a configuration of the other mode is refused as a bad read (the
    reference stops on that mismatch: a production worker must not follow a test-mode contract).
    """
    try:
        # Reading a contract is harmless whatever the address's test flag says, so every tag is
        # accepted (the testnet rules do); length, alphabet, checksum and workchain are checked.
        address = parse_address(root_address, TonNetwork.TESTNET).raw
    except AddressError as exc:
        raise RootConfigError(
            f"The root contract address is not usable: {exc.message}",
            hint="Set the COCOON root contract address (EQ…, UQ… or 0:<64 hex digits>).",
        ) from None

    async def read() -> RootConfig:
        state = await chain.get_account_state(address)
        if state.status != "active":
            raise RootConfigError(
                f"The root contract {address} is not active on this network ({state.status}).",
                hint="Check the root contract address and whether the app uses the right network.",
            )
        if state.data is None:
            raise RootConfigError(
                f"The network returned the root contract {address} without its data.",
                hint="This is usually temporary; the app reads it again shortly.",
            )
        config = parse_root_config_cell(state.data)
        if is_test is not None and config.is_test != is_test:
            modes = {True: "test", False: "production"}
            raise RootConfigError(
                f"The root contract {address} is in {modes[config.is_test]} mode, "
                f"but the worker runs in {modes[is_test]} mode.",
                hint="Use the root contract that matches the worker's mode.",
            )
        return config

    return read


def file_source(path: Path) -> ConfigSource:
    """Read a fake-TON JSON file on every call, so that edits are picked up at the next tick."""

    async def read() -> RootConfig:
        return await asyncio.wait_for(asyncio.to_thread(_read_config_file, path), _FILE_TIMEOUT)

    return read


def _read_config_file(path: Path) -> RootConfig:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_FILE_BYTES + 1)
    except FileNotFoundError:
        raise RootConfigError(
            f"The fake-TON configuration {path} does not exist.", hint=FAKE_TON_HINT
        ) from None
    except OSError as exc:
        raise RootConfigError(
            f"The fake-TON configuration {path} cannot be read: {exc.strerror or exc}.",
            hint=FAKE_TON_HINT,
        ) from None
    if len(data) > MAX_CONFIG_FILE_BYTES:
        raise RootConfigError(
            f"The fake-TON configuration {path} is larger than "
            f"{MAX_CONFIG_FILE_BYTES // (1024 * 1024)} MiB.",
            hint=FAKE_TON_HINT,
        )
    return parse_fake_ton_config(data)


# ---- the worker as a consumer ----


def apply_to_worker(worker: ProxyTargets) -> ConfigChange:
    """An ``on_change`` that moves ``worker`` to the new proxy list and, on a new
    ``params_version``, drops every link so that it is re-dialled (``WorkerRunner::alarm``).

    A configuration listing no usable proxy leaves the worker on the proxies it has: the
    watcher's state still shows the empty list, and dialling stale proxies fails harmlessly.
    """

    def on_change(old: RootConfig | None, new: RootConfig) -> None:
        proxies = list(new.proxy_addresses)
        if not proxies:
            _log.warning("the root configuration lists no usable proxy; keeping the current ones")
        elif old is None or old.proxy_addresses != new.proxy_addresses:
            worker.set_proxies(proxies)
        if old is not None and new.params_version > old.params_version:
            worker.reconnect_all(f"reconnecting for root params version {new.params_version}")

    return on_change
