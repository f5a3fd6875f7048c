"""Crash safety: a real process is killed with SIGKILL between signing and broadcast, and between
broadcast and confirmation; after a restart no money is sent twice and no send is forgotten.

The chain is the simulated chain persisted to SQLite (committed per operation, like a real
network that keeps what it accepted); the kill happens inside ``send_boc`` of a subclass, i.e.
after the pending record was written and before/after the chain took the message.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from app.core.money import Nanoton
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair
from app.wallet.pending import BroadcastState, PendingSendStore, SendStatus
from app.wallet.simulated_chain import SimulatedChain
from app.wallet.withdrawals import Withdrawals
from tests.unit.wallet.conftest import TEST_VECTOR_PHRASE

ROOT = Path(__file__).resolve().parents[3]
TON = 10**9
WALLET_ID = "crash-wallet"
DEST = "0:" + "5e" * 32

_CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from pathlib import Path
    from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
    from app.wallet.mnemonic import derive_keypair, parse_mnemonic
    from app.wallet.pending import PendingSendStore
    from app.wallet.simulated_chain import SimulatedChain
    from app.wallet.withdrawals import WithdrawalRequest, Withdrawals

    data, crash_point, phrase, wallet_id, dest = sys.argv[1:6]

    class CrashingChain(SimulatedChain):
        async def send_boc(self, boc: bytes) -> None:
            if crash_point == "before-broadcast":
                os.kill(os.getpid(), signal.SIGKILL)
            await super().send_boc(boc)
            if crash_point == "after-broadcast":
                os.kill(os.getpid(), signal.SIGKILL)

    async def main() -> None:
        keys = derive_keypair(parse_mnemonic(phrase))
        contract = WalletContract(WalletVersion.V5R1, TonNetwork.TESTNET, keys.public_key)
        chain = CrashingChain(Path(data) / "chain.sqlite3")
        await chain.start()
        store = PendingSendStore(Path(data) / "wallets")
        withdrawals = Withdrawals(chain, contract, wallet_id, store)
        plan = await withdrawals.plan(WithdrawalRequest(dest, "2.5"))
        await withdrawals.execute(plan, keys, confirmed={w.kind for w in plan.warnings})
        print("not killed", flush=True)

    asyncio.run(main())
    """
)


@pytest.fixture
def contract(vector_keys: KeyPair) -> WalletContract:
    return WalletContract(WalletVersion.V5R1, TonNetwork.TESTNET, vector_keys.public_key)


async def _funded_chain(tmp_path: Path, contract: WalletContract) -> None:
    chain = SimulatedChain(tmp_path / "chain.sqlite3")
    await chain.start()
    await chain.mint(contract.raw_address, 10 * TON)
    await chain.aclose()


async def _run_child(tmp_path: Path, crash_point: str) -> None:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(tmp_path),
                crash_point,
                TEST_VECTOR_PHRASE,
                WALLET_ID,
                DEST,
            ],
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    result = await asyncio.to_thread(run)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert "not killed" not in result.stdout


async def _restart(
    tmp_path: Path, contract: WalletContract, *, clock_offset: int = 0
) -> tuple[SimulatedChain, Withdrawals, PendingSendStore]:
    chain = SimulatedChain(
        tmp_path / "chain.sqlite3", clock=lambda: int(time.time()) + clock_offset
    )
    await chain.start()
    store = PendingSendStore(tmp_path / "wallets")
    return chain, Withdrawals(chain, contract, WALLET_ID, store), store


async def _received(chain: SimulatedChain) -> int:
    return int((await chain.get_account_state(DEST)).balance)


@pytest.mark.slow
async def test_killed_between_signing_and_broadcast(
    tmp_path: Path, contract: WalletContract
) -> None:
    await _funded_chain(tmp_path, contract)
    await _run_child(tmp_path, "before-broadcast")
    chain, withdrawals, store = await _restart(tmp_path, contract)
    record = store.get(WALLET_ID)
    assert record is not None  # written before the broadcast, survived the kill
    assert record.state is BroadcastState.SIGNED
    assert await _received(chain) == 0
    first = await withdrawals.reconcile()  # re-broadcasts the very same BOC
    assert first is not None
    assert first.status is SendStatus.PENDING
    assert first.record.message_hash == record.message_hash
    second = await withdrawals.reconcile()
    assert second is not None
    assert second.status is SendStatus.SENT
    assert await withdrawals.reconcile() is None
    assert await _received(chain) == 2_500_000_000
    await chain.aclose()


@pytest.mark.slow
async def test_killed_between_broadcast_and_confirmation(
    tmp_path: Path, contract: WalletContract
) -> None:
    await _funded_chain(tmp_path, contract)
    await _run_child(tmp_path, "after-broadcast")
    chain, withdrawals, store = await _restart(tmp_path, contract)
    record = store.get(WALLET_ID)
    assert record is not None
    assert await _received(chain) == 2_500_000_000
    outcome = await withdrawals.reconcile()
    assert outcome is not None
    assert outcome.status is SendStatus.SENT
    assert outcome.transaction is not None
    assert outcome.transaction.in_msg_normalized_hash == record.normalized_hash
    assert await withdrawals.reconcile() is None
    # Even a stray re-broadcast of the old bytes cannot move money twice.
    with pytest.raises(Exception, match="rejected"):
        await chain.send_boc(record.boc)
    assert await _received(chain) == 2_500_000_000
    assert await chain.get_seqno(contract.raw_address) == 1
    await chain.aclose()


@pytest.mark.slow
async def test_killed_before_broadcast_and_restarted_after_expiry(
    tmp_path: Path, contract: WalletContract
) -> None:
    await _funded_chain(tmp_path, contract)
    await _run_child(tmp_path, "before-broadcast")
    chain, withdrawals, store = await _restart(tmp_path, contract, clock_offset=3600)
    outcome = await withdrawals.reconcile()
    assert outcome is not None
    assert outcome.status is SendStatus.NOT_SENT
    assert store.get(WALLET_ID) is None
    assert await _received(chain) == 0
    assert (await chain.get_account_state(contract.raw_address)).balance == Nanoton(10 * TON)
    await chain.aclose()
