"""WalletService end to end on the simulated chain: vaults, locking, refresh, sends, history."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import keyring
import pytest

from app.core.errors import UserFacingError
from app.core.money import Nanoton
from app.core.paths import AppPaths
from app.core.settings import WalletSettings
from app.wallet.chain import ChainError, ChainOffline, MessageRejected
from app.wallet.contracts import TonNetwork, WalletVersion
from app.wallet.keyring_cache import KeyringCache
from app.wallet.mnemonic import MnemonicError, parse_mnemonic
from app.wallet.node_wallet import NODE_WALLET_MINIMUM
from app.wallet.pending import SendStatus
from app.wallet.service import WalletService
from app.wallet.simulated_chain import FeeModel, SimulatedChain
from app.wallet.vault import KdfParams, WalletVault, WrongPasswordError
from app.wallet.wallet_state import NoWalletError, WalletLockedError, WalletState
from app.wallet.withdrawals import WithdrawalError, WithdrawalRequest
from tests.unit.wallet.conftest import TEST_VECTOR_PHRASE

PASSWORD = "correct horse battery"
TON = 10**9
PEER = "0:" + "cd" * 32
PEER_FRIENDLY = "0QDNzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3NzdTJ"  # PEER, testnet, non-bounceable
VECTOR_V5_TESTNET = "0QDNt69BPPbquSxn9vjkxWPtvf0uPVbEARnDHvHlv06wG0A_"
FEES = FeeModel()


class FaultyChain(SimulatedChain):
    """The simulated chain with switchable faults at its network boundary."""

    def __init__(self) -> None:
        super().__init__()
        self.offline = False
        self.reject_once_as_used = False
        self.drop_sends = False
        self.sent: list[bytes] = []
        self.gate: asyncio.Event | None = None
        self.waiting_at_gate = asyncio.Event()

    async def get_account_state(self, address: str):  # type: ignore[no-untyped-def]
        if self.gate is not None:
            gate, self.gate = self.gate, None
            self.waiting_at_gate.set()
            await gate.wait()
        if self.offline:
            self.online.set(False)
            raise ChainOffline()
        return await super().get_account_state(address)

    async def send_boc(self, boc: bytes) -> None:
        self.sent.append(boc)
        if self.offline or self.drop_sends:
            raise ChainOffline()
        if self.reject_once_as_used:
            self.reject_once_as_used = False
            raise MessageRejected("exitcode=33", seqno_used=True, exit_code=33)
        await super().send_boc(boc)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return AppPaths(tmp_path / "data").ensure()


@pytest.fixture
def chain() -> FaultyChain:
    return FaultyChain()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def service(
    paths: AppPaths, chain: FaultyChain, fast_kdf: KdfParams, clock: Clock
) -> AsyncIterator[WalletService]:
    wallet = WalletService(
        paths,
        "devnet",
        chain,
        kdf=fast_kdf,
        refresh_interval_s=None,
        monotonic=clock,
        settings=WalletSettings(auto_lock_minutes=5, large_first_send_nanoton=100 * TON),
    )
    await wallet.start()
    yield wallet
    await wallet.aclose()


def is_locked(service: WalletService) -> bool:
    return service.state.value.locked


async def funded(service: WalletService, chain: FaultyChain, amount: int = 10 * TON) -> str:
    summary = await service.import_(TEST_VECTOR_PHRASE, PASSWORD)
    await chain.mint(summary.raw_address, amount)
    await service.refresh()
    return summary.raw_address


async def test_create_lists_selects_and_stays_locked(service: WalletService) -> None:
    assert service.state.value == WalletState(offline=False)
    summary, mnemonic = await service.create(PASSWORD, version=WalletVersion.V4R2)
    assert len(mnemonic.words) == 24
    assert mnemonic.phrase() not in repr(summary)
    state = service.state.value
    assert state.active == summary
    assert state.wallets == (summary,)
    assert state.locked
    assert summary.address.startswith("0Q")  # devnet wallets are testnet-flagged


async def test_import_of_the_test_vector_and_bad_phrases(service: WalletService) -> None:
    summary = await service.import_(TEST_VECTOR_PHRASE, PASSWORD)
    assert summary.address == VECTOR_V5_TESTNET
    for bad in ("", "abandon " * 23 + "art", TEST_VECTOR_PHRASE.replace("steel", "steal")):
        with pytest.raises(MnemonicError):
            await service.import_(bad, PASSWORD)
    assert service.wallets() == (summary,)


async def test_select_and_missing_wallets(service: WalletService) -> None:
    with pytest.raises(NoWalletError):
        service.active()
    with pytest.raises(NoWalletError):
        await service.history()
    first = await service.import_(TEST_VECTOR_PHRASE, PASSWORD, version=WalletVersion.V4R2)
    second, _ = await service.create(PASSWORD)
    assert service.active() == second
    assert service.select(first.wallet_id) == first
    assert service.state.value.active == first
    with pytest.raises(NoWalletError):
        service.select("v5r1-testnet-nope")


async def test_unlock_lock_and_auto_lock(service: WalletService, clock: Clock) -> None:
    await service.import_(TEST_VECTOR_PHRASE, PASSWORD)
    with pytest.raises(WrongPasswordError):
        await service.unlock("wrong password!")
    assert is_locked(service)
    await service.unlock(PASSWORD)
    assert not is_locked(service)
    clock.now += 4 * 60
    assert not service.lock_if_idle()
    clock.now += 60
    assert service.lock_if_idle()
    assert is_locked(service)
    with pytest.raises(WalletLockedError):
        await service.unlock(None)  # no keyring configured


async def test_unlock_from_the_keyring(
    paths: AppPaths, chain: FaultyChain, fast_kdf: KdfParams
) -> None:
    cache = KeyringCache(backend=keyring.get_keyring())
    wallet = WalletService(
        paths, "devnet", chain, kdf=fast_kdf, keyring=cache, refresh_interval_s=None
    )
    await wallet.start()
    await wallet.import_(TEST_VECTOR_PHRASE, PASSWORD)
    with pytest.raises(WalletLockedError):
        await wallet.unlock()
    await wallet.unlock(PASSWORD, remember=True)
    wallet.lock()
    await wallet.unlock()
    assert not wallet.state.value.locked
    await wallet.aclose()
    assert wallet.state.value.locked


async def test_refresh_publishes_balance_and_offline(
    service: WalletService, chain: FaultyChain
) -> None:
    address = await funded(service, chain)
    state = service.state.value
    assert (state.balance, state.deployed, state.offline) == (10 * TON, False, False)
    assert state.last_refresh is not None
    chain.offline = True
    await service.refresh()
    assert service.state.value.offline
    assert service.state.value.balance == 10 * TON  # the last known balance stays visible
    chain.offline = False
    chain.online.set(True)
    await chain.mint(address, 1)
    assert (await service.refresh()).balance == 10 * TON + 1
    assert not service.state.value.offline


async def test_a_newer_refresh_supersedes_a_running_one(
    service: WalletService, chain: FaultyChain
) -> None:
    address = await funded(service, chain)
    gate = asyncio.Event()
    chain.gate = gate
    slow = asyncio.create_task(service.refresh())
    await asyncio.sleep(0)
    await chain.mint(address, 5)
    fresh = await service.refresh()
    gate.set()
    assert await slow == fresh
    assert fresh.balance == 10 * TON + 5


async def test_withdraw_sends_once_and_confirms(service: WalletService, chain: FaultyChain) -> None:
    await funded(service, chain)
    request = WithdrawalRequest(PEER_FRIENDLY, "1.5", comment="thanks")
    with pytest.raises(WalletLockedError):
        await service.withdraw(request)
    await service.unlock(PASSWORD)
    plan = await service.plan_withdrawal(request)
    assert (plan.amount, plan.bounce) == (1_500_000_000, False)
    receipt = await service.withdraw(request, plan=plan)
    assert receipt.status is SendStatus.SENT  # the local chain applies it at once
    assert (receipt.amount, receipt.seqno, receipt.destination) == (1_500_000_000, 0, PEER_FRIENDLY)
    assert len(chain.sent) == 1
    state = service.state.value
    assert state.pending_send is None
    fees = FEES.external + FEES.deploy + FEES.forward
    assert state.balance == 10 * TON - 1_500_000_000 - fees
    assert (await chain.get_account_state(PEER)).balance == 1_500_000_000


@pytest.mark.parametrize("amount", ["0", "-1", "1.0000000001", "abc", "1e3", "20"])
async def test_bad_amounts_are_refused_before_anything_is_signed(
    service: WalletService, chain: FaultyChain, amount: str
) -> None:
    await funded(service, chain)
    await service.unlock(PASSWORD)
    with pytest.raises(UserFacingError):
        await service.withdraw(WithdrawalRequest(PEER_FRIENDLY, amount))
    assert chain.sent == []


async def test_rejected_as_seqno_used_refreshes_and_never_resends(
    service: WalletService, chain: FaultyChain
) -> None:
    await funded(service, chain)
    await service.unlock(PASSWORD)
    chain.reject_once_as_used = True
    receipt = await service.withdraw(WithdrawalRequest(PEER_FRIENDLY, "1"))
    assert receipt.status is SendStatus.PENDING
    assert len(chain.sent) == 1  # no second, different message
    assert service.state.value.pending_send is not None
    with pytest.raises(WithdrawalError, match="not confirmed yet"):
        await service.withdraw(WithdrawalRequest(PEER_FRIENDLY, "1"))
    assert len(chain.sent) == 1


async def test_offline_network_refuses_to_send(service: WalletService, chain: FaultyChain) -> None:
    await funded(service, chain)
    await service.unlock(PASSWORD)
    chain.offline = True
    with pytest.raises(ChainOffline):
        await service.withdraw(WithdrawalRequest(PEER_FRIENDLY, "2"))
    assert chain.sent == []
    assert service.state.value.offline


async def test_send_lost_on_the_way_is_kept_and_the_same_boc_rebroadcast(
    service: WalletService, chain: FaultyChain
) -> None:
    await funded(service, chain)
    await service.unlock(PASSWORD)
    chain.drop_sends = True
    receipt = await service.withdraw(WithdrawalRequest(PEER_FRIENDLY, "2"))
    assert receipt.status is SendStatus.UNKNOWN
    assert len(chain.sent) == 2  # the refresh after the send already retried the same bytes
    chain.drop_sends = False
    pending = service.state.value.pending_send
    assert pending is not None
    assert pending.amount == 2 * TON
    await service.refresh()  # re-broadcasts the same bytes; the chain applies them
    state = await service.refresh()  # sees the transaction: confirmed
    assert len(set(chain.sent)) == 1  # only ever the one signed message
    assert state.pending_send is None
    assert (await chain.get_account_state(PEER)).balance == 2 * TON


async def test_history_and_csv_export(
    service: WalletService, chain: FaultyChain, tmp_path: Path
) -> None:
    await funded(service, chain)
    await service.unlock(PASSWORD)
    await service.withdraw(WithdrawalRequest(PEER_FRIENDLY, "1", comment="rent"))
    page = await service.history()
    assert [e.direction.value for e in page.entries] == ["out", "in"]
    target = tmp_path / "history.csv"
    assert await service.export_csv(target) == 2
    text = target.read_text()
    assert PEER_FRIENDLY in text
    assert "1.000000000" in text
    assert "rent" in text
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


async def test_node_wallet_top_up(service: WalletService, chain: FaultyChain) -> None:
    await funded(service, chain)
    status = await service.create_node_wallet(PASSWORD)
    assert status is not None
    assert (status.balance, status.shortfall, status.ready) == (0, NODE_WALLET_MINIMUM, False)
    assert service.state.value.node_wallet == status
    assert all(w.address != status.address for w in service.wallets())
    await service.unlock(PASSWORD)
    receipt = await service.top_up_node_wallet()
    assert receipt.amount == NODE_WALLET_MINIMUM
    node = service.state.value.node_wallet
    assert node is not None
    assert node.ready
    assert "ready" in node.describe()


async def test_refresh_timer_runs_until_closed(
    paths: AppPaths, chain: FaultyChain, fast_kdf: KdfParams
) -> None:
    wallet = WalletService(paths, "devnet", chain, kdf=fast_kdf, refresh_interval_s=0.01)
    seen = asyncio.Event()
    wallet.state.subscribe(lambda s: seen.set() if s.balance == 3 else None)
    summary = await wallet.import_(TEST_VECTOR_PHRASE, PASSWORD)
    await chain.mint(summary.raw_address, 3)
    await wallet.start()
    await asyncio.wait_for(seen.wait(), 10)
    await wallet.aclose()
    await wallet.aclose()  # idempotent
    assert Nanoton(3) == wallet.state.value.balance


async def test_other_networks_wallets_are_not_listed(
    service: WalletService, paths: AppPaths, fast_kdf: KdfParams
) -> None:
    WalletVault.create(
        paths.wallets_dir,
        parse_mnemonic(TEST_VECTOR_PHRASE),
        PASSWORD,
        version=WalletVersion.V5R1,
        network=TonNetwork.MAINNET,
        kdf=fast_kdf,
    )
    assert service.wallets() == ()
    assert (await service.refresh()).active is None  # nothing to refresh


async def test_chain_and_pending_errors_are_published(
    service: WalletService, chain: FaultyChain, paths: AppPaths
) -> None:
    await funded(service, chain)
    active = service.active()
    damaged = paths.wallets_dir / "pending" / "devnet" / f"{active.wallet_id}.pending.json"
    damaged.parent.mkdir(parents=True, exist_ok=True)
    damaged.write_text("{broken")
    state = await service.refresh()
    assert state.refresh_error is not None
    assert "damaged" in state.refresh_error
    damaged.unlink()

    async def broken(address: str) -> object:
        raise ChainError("The liteserver refused to read the account: boom")

    chain.get_account_state = broken  # type: ignore[method-assign]
    assert (await service.refresh()).refresh_error == (
        "The liteserver refused to read the account: boom"
    )


async def test_a_cancelled_refresh_caller_is_cancelled(
    service: WalletService, chain: FaultyChain
) -> None:
    await funded(service, chain)
    chain.gate = asyncio.Event()
    caller = asyncio.create_task(service.refresh())
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_a_cancelled_refresh_task_without_a_successor_cancels_its_caller(
    service: WalletService, chain: FaultyChain
) -> None:
    await funded(service, chain)
    chain.gate = asyncio.Event()
    caller = asyncio.create_task(service.refresh())
    await asyncio.sleep(0)
    running = service._refresh_task
    assert running is not None
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_refresh_loop_survives_being_superseded(
    paths: AppPaths, chain: FaultyChain, fast_kdf: KdfParams
) -> None:
    wallet = WalletService(paths, "devnet", chain, kdf=fast_kdf, refresh_interval_s=0.01)
    summary = await wallet.import_(TEST_VECTOR_PHRASE, PASSWORD)
    await chain.mint(summary.raw_address, 7)
    gate = asyncio.Event()
    chain.gate = gate
    await wallet.start()
    await chain.waiting_at_gate.wait()  # the loop's refresh is held at the gate
    direct = asyncio.create_task(wallet.refresh())  # supersedes the loop's refresh
    await asyncio.sleep(0)
    gate.set()
    assert (await direct).balance == 7
    loop_task = wallet._loop_task
    assert loop_task is not None
    assert not loop_task.done()
    await wallet.aclose()


@pytest.mark.allow_log_warnings
async def test_refresh_loop_logs_unexpected_errors_and_goes_on(
    paths: AppPaths, chain: FaultyChain, fast_kdf: KdfParams
) -> None:
    wallet = WalletService(paths, "devnet", chain, kdf=fast_kdf, refresh_interval_s=0.01)
    await wallet.import_(TEST_VECTOR_PHRASE, PASSWORD)
    calls: list[str] = []
    recovered = asyncio.Event()

    async def flaky(address: str) -> object:
        calls.append(address)
        if len(calls) == 1:
            raise RuntimeError("unexpected")
        recovered.set()
        return await SimulatedChain.get_account_state(chain, address)

    chain.get_account_state = flaky  # type: ignore[method-assign]
    await wallet.start()
    await asyncio.wait_for(recovered.wait(), 10)
    await wallet.aclose()
    assert len(calls) >= 2


async def test_refresh_loop_ends_once_closing(service: WalletService) -> None:
    service._closing = True
    await asyncio.wait_for(service._refresh_loop(0.01), 10)  # returns instead of looping
