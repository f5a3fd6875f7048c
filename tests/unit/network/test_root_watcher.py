"""RootConfigWatcher: chain and fake-TON file sources, change callbacks, bad reads, shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from app.core.money import Nanoton
from app.network.root_config import (
    RootConfig,
    RootConfigError,
    parse_root_config_cell,
)
from app.network.root_watcher import (
    MAX_CONFIG_FILE_BYTES,
    RootConfigState,
    RootConfigWatcher,
    apply_to_worker,
    chain_source,
    file_source,
)
from app.network.worker import CocoonWorker
from app.network.worker_config import ProxyAddress
from app.wallet.chain import AccountState, ChainOffline
from app.wallet.simulated_chain import SimulatedChain
from tests.unit.network.root_cells import OWNER, root_config_boc
from tests.unit.network.session_fixtures import trace_config
from tests.unit.network.traces import traces_dir

ROOT = "0:" + "cd" * 32
Change = tuple[RootConfig | None, RootConfig]


class FakeChain:
    """The one ChainBackend method the chain source uses, answering what the test put there."""

    def __init__(self, answer: AccountState | Exception) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def put(self, **boc_args: Any) -> None:
        self.answer = AccountState(
            ROOT, Nanoton(10**9), "active", b"code", root_config_boc(**boc_args)
        )

    async def get_account_state(self, address: str) -> AccountState:
        self.asked.append(address)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def chain_with(**boc_args: Any) -> FakeChain:
    chain = FakeChain(ChainOffline())
    chain.put(**boc_args)
    return chain


class Ticker:
    """An injected ``sleep`` the test releases one call at a time, so each tick is one read."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._asleep: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()
        self._current: asyncio.Future[None] | None = None

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._asleep.put(wake)
        await wake

    async def asleep(self) -> None:
        """Return once the watcher has finished a read and gone to sleep."""
        # A guard against a hung test, not a timing assertion.
        self._current = await asyncio.wait_for(self._asleep.get(), 10)

    async def tick(self) -> None:
        """Wake the watcher and wait until its next read is done."""
        assert self._current is not None
        self._current.set_result(None)
        await self.asleep()


class Recorder:
    def __init__(self) -> None:
        self.changes: list[Change] = []

    def __call__(self, old: RootConfig | None, new: RootConfig) -> None:
        self.changes.append((old, new))


def _watcher(
    source: Callable[[], Awaitable[RootConfig]], ticker: Ticker, recorder: Recorder, **kw: Any
) -> RootConfigWatcher:
    return RootConfigWatcher(
        source,
        on_change=recorder,
        clock=iter(range(1000, 10**6)).__next__,
        sleep=ticker.sleep,
        **kw,
    )


def _watcher_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "root-config-watcher"]


# ---- chain source ----


async def test_chain_source_reads_the_root_contract_data() -> None:
    chain = chain_with(version=4, params_version=2, proxies=("10.0.0.1:11001", "10.0.0.2:11001"))
    config = await chain_source(chain, ROOT)()
    assert chain.asked == [ROOT]
    assert (config.version, config.params_version) == (4, 2)
    assert config.owner_address == OWNER
    assert config.proxy_addresses == (
        ProxyAddress("10.0.0.1", 11001),
        ProxyAddress("10.0.0.2", 11001),
    )
    assert config.accepts_model("Qwen/Qwen3-8B@abc:def")


async def test_chain_source_takes_any_address_form() -> None:
    chain = chain_with()
    for form in ("EQDNzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3NzTKG", " " + ROOT.upper() + "\n"):
        await chain_source(chain, form)()
    assert chain.asked == [ROOT, ROOT]


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("", "Enter a TON address"),
        ("not an address", "no spaces"),
        ("0:abcd", "64 hex digits"),
        ("5:" + "cd" * 32, "Workchain 5"),
        ("EQ" + "A" * 20, "48 characters"),
        ("EQDNzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3NzTKH", "checksum"),
    ],
)
def test_chain_source_refuses_a_bad_root_address(address: str, message: str) -> None:
    with pytest.raises(
        RootConfigError, match=f"root contract address is not usable: .*{message}"
    ) as info:
        chain_source(chain_with(), address)
    assert info.value.hint


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (AccountState(ROOT, Nanoton(0), "nonexist"), "not active on this network \\(nonexist\\)"),
        (AccountState(ROOT, Nanoton(5), "frozen"), "not active on this network \\(frozen\\)"),
        (AccountState(ROOT, Nanoton(5), "active", b"code", None), "without its data"),
        (AccountState(ROOT, Nanoton(5), "active", b"code", b"garbage"), "could not be read"),
    ],
)
async def test_chain_source_refuses_unusable_account_states(
    state: AccountState, message: str
) -> None:
    with pytest.raises(RootConfigError, match=message):
        await chain_source(FakeChain(state), ROOT)()


@pytest.mark.parametrize(("contract_test", "worker_test"), [(True, False), (False, True)])
async def test_chain_source_refuses_a_contract_of_the_other_mode(
    contract_test: bool, worker_test: bool
) -> None:
    chain = chain_with(is_test=contract_test)
    assert (await chain_source(chain, ROOT)()).is_test is contract_test
    assert (await chain_source(chain, ROOT, is_test=contract_test)()).is_test is contract_test
    modes = {True: "test", False: "production"}
    expected = f"is in {modes[contract_test]} mode, but the worker runs in {modes[worker_test]}"
    with pytest.raises(RootConfigError, match=expected):
        await chain_source(chain, ROOT, is_test=worker_test)()


async def test_chain_source_against_the_simulated_chain_without_a_root_contract() -> None:
    chain = SimulatedChain()
    await chain.start()
    try:
        with pytest.raises(RootConfigError, match=r"not active .*nonexist"):
            await chain_source(chain, ROOT)()
    finally:
        await chain.aclose()


# ---- watching ----


async def test_first_read_then_only_increases_and_proxy_moves_call_back() -> None:
    chain, ticker, recorder = chain_with(version=1, params_version=1), Ticker(), Recorder()
    watcher = _watcher(chain_source(chain, ROOT), ticker, recorder)
    states: list[RootConfigState] = []
    watcher.state.subscribe(states.append)
    await watcher.start()
    try:
        await ticker.asleep()
        first = watcher.state.value.config
        assert first is not None
        assert first.params_version == 1
        assert recorder.changes == [(None, first)]
        assert watcher.state.value == RootConfigState(first, "", 1000)

        await ticker.tick()  # the same config again: no callback, read time moves on
        assert len(recorder.changes) == 1
        assert watcher.state.value == RootConfigState(first, "", 1001)

        chain.put(version=2, params_version=2)
        await ticker.tick()
        second = watcher.state.value.config
        assert second is not None
        assert second.params_version == 2
        assert recorder.changes[1:] == [(first, second)]

        chain.put(version=3, params_version=2)  # a newer version, same params and proxies
        await ticker.tick()
        assert len(recorder.changes) == 2
        assert watcher.state.value.config is not None
        assert watcher.state.value.config.version == 3

        chain.put(version=4, params_version=2, proxies=("10.0.0.9:443",))
        await ticker.tick()
        assert len(recorder.changes) == 3
        assert recorder.changes[2][1].proxy_addresses == (ProxyAddress("10.0.0.9", 443),)
    finally:
        await watcher.aclose()
    assert len(chain.asked) == 5
    assert all(s.last_error == "" for s in states)
    assert 30.0 <= min(ticker.delays) <= max(ticker.delays) <= 60.0  # the reference's jitter


async def test_an_initial_config_is_not_announced_again() -> None:
    chain, ticker, recorder = chain_with(version=1, params_version=1), Ticker(), Recorder()
    initial = await chain_source(chain, ROOT)()
    watcher = _watcher(chain_source(chain, ROOT), ticker, recorder, initial=initial)
    assert watcher.state.value == RootConfigState(initial)
    await watcher.start()
    try:
        await ticker.asleep()
        assert recorder.changes == []
        assert watcher.state.value.last_read_at == 1000
    finally:
        await watcher.aclose()


@pytest.mark.allow_log_warnings
async def test_an_older_version_is_ignored_and_reported() -> None:
    chain, ticker, recorder = chain_with(version=5, params_version=3), Ticker(), Recorder()
    watcher = _watcher(chain_source(chain, ROOT), ticker, recorder)
    await watcher.start()
    try:
        await ticker.asleep()
        good = watcher.state.value.config
        chain.put(version=4, params_version=9, proxies=("10.0.0.7:1",))  # a lagging liteserver
        await ticker.tick()
        state = watcher.state.value
        assert state.config is good
        assert state.last_read_at == 1000
        assert "version 4, older than version 5 in use" in state.last_error
        assert len(recorder.changes) == 1
    finally:
        await watcher.aclose()


@pytest.mark.allow_log_warnings
@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (ChainOffline(), "The TON network cannot be reached.\nCheck the internet connection"),
        (AccountState(ROOT, Nanoton(1), "active", b"code", b"\x00bad cell"), "could not be read"),
        (AccountState(ROOT, Nanoton(0), "nonexist"), "not active"),
        (ValueError("a bug in a source"), "could not be read \\(ValueError\\)"),
    ],
)
async def test_bad_reads_keep_the_last_good_config_and_the_loop_running(
    failure: AccountState | Exception, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    chain, ticker, recorder = chain_with(version=1, params_version=1), Ticker(), Recorder()
    watcher = _watcher(chain_source(chain, ROOT), ticker, recorder)
    await watcher.start()
    try:
        await ticker.asleep()
        good = watcher.state.value.config
        assert good is not None

        chain.answer = failure
        await ticker.tick()
        await ticker.tick()  # still failing: reported once, loop alive
        state = watcher.state.value
        assert state.config is good
        assert state.last_read_at == 1000
        assert re.search(message, state.last_error)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1

        chain.put(version=2, params_version=2)
        await ticker.tick()
        state = watcher.state.value
        assert state.last_error == ""
        assert state.config is not None
        assert state.config.version == 2
        assert [new.version for _, new in recorder.changes] == [1, 2]
        assert recorder.changes[1][0] is good
    finally:
        await watcher.aclose()
    assert not _watcher_tasks()


@pytest.mark.allow_log_warnings
async def test_a_source_that_never_answers_times_out() -> None:
    async def hangs() -> RootConfig:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    watcher = RootConfigWatcher(hangs, read_timeout=0.01)
    state = await watcher.refresh()
    assert state == RootConfigState(None, "The root configuration was not read within 0.01 s.")


@pytest.mark.allow_log_warnings
async def test_a_failing_callback_keeps_the_config_and_is_reported() -> None:
    chain, calls = chain_with(version=1, params_version=1), []

    def broken(old: RootConfig | None, new: RootConfig) -> None:
        calls.append(new.version)
        raise RootConfigError("No room for the new proxies.", hint="Free some.")

    watcher = RootConfigWatcher(chain_source(chain, ROOT), on_change=broken, clock=lambda: 7.0)
    state = await watcher.refresh()
    assert state.config is not None
    assert state.config.version == 1
    assert state.last_error == (
        "The new root configuration could not be applied: No room for the new proxies.\nFree some."
    )
    assert (await watcher.refresh()).last_error == ""  # same config: nothing to apply again
    chain.put(version=2, params_version=2)
    assert "could not be applied" in (await watcher.refresh()).last_error
    assert calls == [1, 2]


async def test_refresh_works_without_starting_and_without_a_callback() -> None:
    watcher = RootConfigWatcher(chain_source(chain_with(version=8), ROOT), clock=lambda: 3.5)
    state = await watcher.refresh()
    assert state.config is not None
    assert state.config.version == 8
    assert state.last_read_at == 3.5
    assert not watcher.running


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": (0.0, 1.0)}, "interval"),
        ({"interval": (60.0, 30.0)}, "interval"),
        ({"read_timeout": 0.0}, "read_timeout"),
    ],
)
def test_bad_timer_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RootConfigWatcher(chain_source(chain_with(), ROOT), **kwargs)


async def test_aclose_leaves_no_task_even_in_the_middle_of_a_read() -> None:
    started, never = asyncio.Event(), asyncio.Event()

    async def slow() -> RootConfig:
        started.set()
        await never.wait()
        raise AssertionError("unreachable")

    watcher = RootConfigWatcher(slow)
    await watcher.start()
    await watcher.start()  # idempotent
    assert len(_watcher_tasks()) == 1
    await asyncio.wait_for(started.wait(), 10)
    await watcher.aclose()
    await watcher.aclose()  # idempotent
    assert not _watcher_tasks()
    assert not watcher.running
    assert watcher.state.value == RootConfigState()


# ---- fake-TON file source ----


def _fixture_config() -> dict[str, Any]:
    path = traces_dir() / "configs" / "fake-ton-config.json"
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


async def test_file_source_rereads_an_edited_fake_ton_file(tmp_path: Path) -> None:
    obj = _fixture_config()
    path = tmp_path / "fake-ton-config.json"
    path.write_text(json.dumps(obj))
    ticker, recorder = Ticker(), Recorder()
    watcher = _watcher(file_source(path), ticker, recorder)
    await watcher.start()
    try:
        await ticker.asleep()
        first = watcher.state.value.config
        assert first is not None
        assert (first.version, first.params_version) == (3, 1)
        assert first.proxy_addresses == (ProxyAddress("127.0.0.1", 11001),)
        assert recorder.changes == [(None, first)]

        await ticker.tick()
        assert len(recorder.changes) == 1

        # An operator adds a proxy and bumps params_version without touching "version".
        obj["registered_proxies"].append({"seqno": 2, "address": "127.0.0.1:12001"})
        obj["params_version"] = 2
        path.write_text(json.dumps(obj))
        await ticker.tick()
        second = watcher.state.value.config
        assert second is not None
        assert second.params_version == 2
        assert second.proxy_addresses[-1] == ProxyAddress("127.0.0.1", 12001)
        assert recorder.changes[1:] == [(first, second)]
    finally:
        await watcher.aclose()
    assert not _watcher_tasks()


def _unreadable(kind: str, path: Path) -> str:
    if kind == "missing":
        path.unlink()
        return "does not exist"
    if kind == "directory":
        path.unlink()
        path.mkdir()
        return "cannot be read"
    if kind == "not json":
        path.write_text("{ not json")
        return "not JSON"
    if kind == "bad field":
        path.write_text(json.dumps({**_fixture_config(), "params_version": "two"}))
        return "params_version in the fake-TON configuration must be an integer"
    path.write_bytes(b" " * (MAX_CONFIG_FILE_BYTES + 1))
    return "larger than 4 MiB"


@pytest.mark.allow_log_warnings
@pytest.mark.parametrize("kind", ["missing", "directory", "not json", "bad field", "too big"])
async def test_an_unreadable_file_keeps_the_last_good_config(tmp_path: Path, kind: str) -> None:
    obj = _fixture_config()
    path = tmp_path / "fake-ton-config.json"
    path.write_text(json.dumps(obj))
    ticker, recorder = Ticker(), Recorder()
    watcher = _watcher(file_source(path), ticker, recorder)
    await watcher.start()
    try:
        await ticker.asleep()
        good = watcher.state.value.config
        assert good is not None

        message = _unreadable(kind, path)
        await ticker.tick()
        state = watcher.state.value
        assert state.config is good
        assert message in state.last_error
        assert "Check the fake-TON configuration file" in state.last_error

        if path.is_dir():
            path.rmdir()
        obj["params_version"] = 5
        path.write_text(json.dumps(obj))
        await ticker.tick()
        state = watcher.state.value
        assert state.last_error == ""
        assert state.config is not None
        assert state.config.params_version == 5
        assert len(recorder.changes) == 2
    finally:
        await watcher.aclose()


# ---- applying a change to the worker ----


class Targets:
    """Records what apply_to_worker asks of the worker."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def set_proxies(self, proxies: Sequence[ProxyAddress]) -> None:
        self.calls.append(("set_proxies", tuple(str(p) for p in proxies)))

    def reconnect_all(self, reason: str = "") -> None:
        self.calls.append(("reconnect_all", reason))


def _config(**boc_args: Any) -> RootConfig:
    return parse_root_config_cell(root_config_boc(**boc_args))


@pytest.mark.allow_log_warnings  # the empty list is warned about
def test_apply_to_worker_moves_proxies_and_reconnects_on_new_params() -> None:
    targets = Targets()
    apply = apply_to_worker(targets)
    v1 = _config(version=1, params_version=1, proxies=("10.0.0.1:1",))
    apply(None, v1)
    assert targets.calls == [("set_proxies", ("10.0.0.1:1",))]

    targets.calls.clear()
    v2 = _config(version=2, params_version=2, proxies=("10.0.0.1:1",))
    apply(v1, v2)
    assert targets.calls == [("reconnect_all", "reconnecting for root params version 2")]

    targets.calls.clear()
    v3 = _config(version=3, params_version=2, proxies=("10.0.0.1:1", "10.0.0.2:2"))
    apply(v2, v3)
    assert targets.calls == [("set_proxies", ("10.0.0.1:1", "10.0.0.2:2"))]

    targets.calls.clear()
    v4 = _config(version=4, params_version=3, proxies=())
    apply(v3, v4)  # nothing to dial: keep the current proxies, still reconnect
    assert targets.calls == [("reconnect_all", "reconnecting for root params version 3")]


async def test_apply_to_worker_drives_a_real_worker_through_the_watcher() -> None:
    worker = CocoonWorker(trace_config(proxies=["127.0.0.1:1"]), server=object())  # type: ignore[arg-type]
    chain = chain_with(version=1, params_version=1, proxies=("10.0.0.1:11001", "10.0.0.2:11001"))
    watcher = RootConfigWatcher(chain_source(chain, ROOT), on_change=apply_to_worker(worker))
    await watcher.refresh()
    assert worker.config.proxies == (
        ProxyAddress("10.0.0.1", 11001),
        ProxyAddress("10.0.0.2", 11001),
    )
    assert watcher.state.value.last_error == ""
