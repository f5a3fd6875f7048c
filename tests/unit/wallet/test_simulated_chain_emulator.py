"""SimulatedChain against the official wallet contracts: the SAME BOCs go through pytvm's TON
emulator and through the simulated chain, which must agree on accept/reject, the contract's exit
code, the seqno afterwards and the money sent. Skipped (like test_emulator) without pytvm.
"""

# pytoniq-core and pytvm results are loosely typed.
# mypy: disable-error-code="no-untyped-call,union-attr"
from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from pytoniq_core.boc.address import Address

from app.core.money import Nanoton
from app.wallet.chain import MessageRejected
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair
from app.wallet.simulated_chain import SimulatedChain
from app.wallet.transfer import SendMode, TransferOrder, sign_transfer
from tests.unit.wallet.test_emulator import FUNDS, NOW, EmulatedWallet
from tests.unit.wallet.test_simulated_chain import custom_body, external, other_keys

DEST = "0:" + "ab" * 32


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    exit_code: int
    seqno: int
    sent: tuple[int, ...]


def _seqno_of(version: WalletVersion, data: Any) -> int:
    cs = data.begin_parse()
    if version is WalletVersion.V5R1:
        cs.skip_bits(1)
    seqno: int = cs.load_uint(32)
    return seqno


class Pair:
    """One wallet on the emulator and on the simulated chain, fed identical messages."""

    def __init__(self, engine: Any, chain: SimulatedChain, contract: WalletContract) -> None:
        self.emulated = EmulatedWallet(engine, contract)
        self.chain = chain
        self.contract = contract

    def emulator_verdict(self, boc: bytes) -> Verdict:
        result = self.emulated.send(SimpleNamespace(boc=boc))  # type: ignore[arg-type]
        storage = self.emulated.shard_account.account.storage
        seqno = (
            _seqno_of(self.contract.version, storage.state.state_init.data)
            if storage.state.type_ == "account_active"
            else 0
        )
        if not result["success"]:
            return Verdict(False, result["vm_exit_code"], seqno, ())
        tx = result["transaction"]
        sent = tuple(m.info.value.grams for m in tx.out_msgs)
        if tx.description.aborted:
            sent = ()
        return Verdict(True, tx.description.compute_ph.exit_code, seqno, sent)

    async def chain_verdict(self, boc: bytes) -> Verdict:
        address = self.contract.raw_address
        try:
            await self.chain.send_boc(boc)
        except MessageRejected as rejected:
            seqno = await self.chain.get_seqno(address)
            # -1: rejected without a contract exit code (never equal to the emulator's)
            code = rejected.exit_code if rejected.exit_code is not None else -1
            return Verdict(False, code, seqno, ())
        [tx, *_] = await self.chain.get_transactions(address, 1)
        seqno = await self.chain.get_seqno(address)
        return Verdict(True, tx.compute_exit_code or 0, seqno, tuple(m.value for m in tx.out_msgs))

    async def both(self, boc: bytes) -> tuple[Verdict, Verdict]:
        return self.emulator_verdict(boc), await self.chain_verdict(boc)


@pytest.fixture(scope="module")
def engine() -> Any:
    from pytvm.engine import EmulatorEngineC

    from tests.unit.wallet.test_emulator import _LIBS

    engine = EmulatorEngineC(str(_LIBS[0]))
    engine.emulator_set_verbosity_level(0)
    return engine


@pytest.fixture(params=list(WalletVersion), ids=str)
async def pair(
    request: pytest.FixtureRequest, engine: Any, vector_keys: KeyPair
) -> AsyncIterator[Pair]:
    contract = WalletContract(request.param, TonNetwork.TESTNET, vector_keys.public_key)
    chain = SimulatedChain(clock=lambda: NOW)
    await chain.mint(contract.raw_address, FUNDS)
    yield Pair(engine, chain, contract)
    await chain.aclose()


def _signed(pair: Pair, keys: KeyPair, *, seqno: int, amount: int = 10**9, **kw: Any) -> bytes:
    order = TransferOrder(
        destination=Address(DEST),
        amount=Nanoton(amount),
        bounce=False,
        mode=kw.pop("mode", SendMode.PAY_FEES_SEPARATELY),
        comment=kw.pop("comment", None),
    )
    return sign_transfer(
        pair.contract,
        keys,
        order,
        seqno=seqno,
        valid_until=kw.pop("valid_until", NOW + 300),
        deployed=seqno > 0,
    ).boc


async def test_deploy_transfer_and_replay_agree(pair: Pair, vector_keys: KeyPair) -> None:
    first = _signed(pair, vector_keys, seqno=0, comment="hi ✓")
    emulated, simulated = await pair.both(first)
    assert emulated == simulated == Verdict(True, 0, 1, (10**9,))
    second = _signed(pair, vector_keys, seqno=1, amount=2 * 10**9)
    emulated, simulated = await pair.both(second)
    assert emulated == simulated == Verdict(True, 0, 2, (2 * 10**9,))
    replay_emulated, replay_simulated = await pair.both(second)
    assert replay_emulated == replay_simulated
    assert not replay_simulated.accepted


@pytest.mark.parametrize("case", ["wrong_seqno", "bad_signature", "expired", "wrong_wallet_id"])
async def test_rejections_agree(pair: Pair, vector_keys: KeyPair, case: str) -> None:
    emulated, simulated = await pair.both(_signed(pair, vector_keys, seqno=0))
    assert emulated == simulated
    if case == "wrong_seqno":
        boc = _signed(pair, vector_keys, seqno=7)
    elif case == "bad_signature":
        forged = KeyPair(vector_keys.public_key, other_keys()._secret_key)
        boc = _signed(pair, forged, seqno=1)
    elif case == "expired":
        boc = _signed(pair, vector_keys, seqno=1, valid_until=NOW - 1)
    else:
        body = custom_body(
            pair.contract,
            vector_keys,
            seqno=1,
            valid_until=NOW + 300,
            mode=3,
            amount=10**9,
            wallet_id=pair.contract.wallet_id ^ 1,
        )
        boc = external(pair.contract, body, with_init=False)
    emulated, simulated = await pair.both(boc)
    assert not emulated.accepted
    assert emulated == simulated


async def test_send_all_and_too_large_amounts_agree(pair: Pair, vector_keys: KeyPair) -> None:
    emulated, simulated = await pair.both(_signed(pair, vector_keys, seqno=0, amount=100 * 10**9))
    assert emulated == simulated == Verdict(True, 0, 1, ())
    emulated, simulated = await pair.both(
        _signed(pair, vector_keys, seqno=1, amount=0, mode=SendMode.SEND_ALL)
    )
    assert (emulated.accepted, emulated.seqno, len(emulated.sent)) == (True, 2, 1)
    assert (simulated.accepted, simulated.seqno, len(simulated.sent)) == (True, 2, 1)
    assert pair.emulated.balance == 0
    assert (await pair.chain.get_account_state(pair.contract.raw_address)).balance == 0


async def test_missing_ignore_errors_mode_agrees(pair: Pair, vector_keys: KeyPair) -> None:
    await pair.both(_signed(pair, vector_keys, seqno=0))
    # mode 1 without +2 and more than the balance: V4R2 aborts (seqno kept, replayable),
    # V5R1 refuses the action list with exit 137 after accepting (seqno burned).
    body = custom_body(
        pair.contract, vector_keys, seqno=1, valid_until=NOW + 300, mode=1, amount=100 * 10**9
    )
    emulated, simulated = await pair.both(external(pair.contract, body, with_init=False))
    assert emulated == simulated
