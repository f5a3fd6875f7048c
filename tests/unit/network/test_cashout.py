"""Cash-outs end to end on the simulated chain with the COCOON contract models: deploy, payout
into the owner's wallet, the policy, settlement failures and crashes at every step."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from app.core.settings import PayoutSettings
from app.devnet.devnet_root import devnet_root_config
from app.network.cashout import CashoutError, CashoutService
from app.network.earnings_ledger import JobState, read_ledger
from app.network.payment_store import PaymentStore, PayoutKind, PayoutState
from app.network.proxy_payments import AccountTerms, PaymentBook
from app.network.tl import TLObject
from app.network.vouchers import sign_voucher
from app.wallet.chain import raw_address
from app.wallet.cocoon_contracts import (
    proxy_contract_state_init,
    worker_contract_address,
)
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair
from app.wallet.node_sender import NodeSender
from app.wallet.pending import PendingSend, PendingSendStore
from app.wallet.simulated_chain import SimulatedChain
from app.wallet.withdrawals import WithdrawalError

TON = 1_000_000_000
ROOT = devnet_root_config()
FEE = ROOT.worker_fee_per_token
OWNER = "0:" + "11" * 32
PROXY_OWNER = "0:" + "22" * 32
PROXY_KEY = SigningKey(b"\x05" * 32)
NODE_SEED = b"\x09" * 32
TOKENS = 10_000_000  # 0.8 TON at the devnet's 80 nanoton per token
EAGER = PayoutSettings(threshold_nanoton=TON // 10, max_fee_percent=50, check_every_s=3600)


def node_keys() -> KeyPair:
    signing = SigningKey(NODE_SEED)
    return KeyPair(bytes(signing.verify_key), bytes(signing._signing_key))


@dataclass
class Rig:
    chain: SimulatedChain
    book: PaymentBook
    cashout: CashoutService
    sender: NodeSender
    proxy_sc: str
    worker_sc: str
    tmp: Path

    def voucher(self, tokens: int, *, key: SigningKey = PROXY_KEY) -> TLObject:
        boc = sign_voucher(
            key,
            tokens=tokens,
            query_id=tokens,
            worker_sc_address=self.worker_sc,
            excesses_address=self.proxy_sc,
        )
        return TLObject("proxy.signedPayment", {"data": boc})

    def hold(self, tokens: int) -> None:
        payments = self.book.open(
            proxy_sc=self.proxy_sc,
            proxy_public_key=bytes(PROXY_KEY.verify_key),
            worker_sc=self.worker_sc,
            owner=OWNER,
        )
        payments.apply(self.voucher(tokens), tokens, tokens, strict=False)

    async def balance(self, address: str) -> int:
        return int((await self.chain.get_account_state(address)).balance)

    def new_service(self, policy: PayoutSettings = EAGER) -> CashoutService:
        return CashoutService(
            self.book, sender=lambda: self.sender, root=lambda: ROOT, policy=lambda: policy
        )


async def make_rig(tmp_path: Path, *, proxy_float: int = 10 * TON, node_gas: int = 3 * TON) -> Rig:
    chain = SimulatedChain(tmp_path / "chain.sqlite3")
    await chain.start()
    chain.register_cocoon_codes(ROOT)
    proxy_sc = await chain.deploy_contract(
        proxy_contract_state_init(
            owner=PROXY_OWNER, proxy_public_key=bytes(PROXY_KEY.verify_key), root=ROOT
        ),
        balance=proxy_float,
    )
    worker_sc = worker_contract_address(
        owner=OWNER, proxy_sc=proxy_sc, proxy_public_key=bytes(PROXY_KEY.verify_key), root=ROOT
    )
    keys = node_keys()
    contract = WalletContract(WalletVersion.V5R1, TonNetwork.TESTNET, keys.public_key)
    await chain.mint(contract.raw_address, node_gas)
    sender = NodeSender(chain, contract, keys, PendingSendStore(tmp_path / "pending"))
    book = PaymentBook(
        PaymentStore(tmp_path / "payments.sqlite3"),
        terms=AccountTerms(fee_per_token=FEE, params_version=ROOT.params_version),
    )
    await book.start()
    rig = Rig(chain, book, None, sender, proxy_sc, worker_sc, tmp_path)  # type: ignore[arg-type]
    rig.cashout = rig.new_service()
    return rig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    made = await make_rig(tmp_path)
    yield made
    await made.book.aclose()
    await made.chain.aclose()


async def test_a_cash_out_deploys_then_pays_the_owner_exactly(rig: Rig) -> None:
    rig.hold(TOKENS)
    node_before = await rig.balance(rig.sender.address)
    [deploy, payout] = await rig.cashout.cash_out()
    assert (deploy.kind, deploy.state) == (PayoutKind.DEPLOY, PayoutState.PAID)
    assert (payout.kind, payout.state) == (PayoutKind.PAYOUT, PayoutState.PAID)
    assert payout.amount_nanoton == TOKENS * FEE == await rig.balance(OWNER)
    assert payout.tx_hash  # the owner's own transaction
    node_spent = node_before - await rig.balance(rig.sender.address)
    assert node_spent == deploy.fee_nanoton + payout.fee_nanoton
    account = rig.book.account(rig.worker_sc)
    assert account is not None
    assert account.paid_tokens == TOKENS

    rig.hold(TOKENS + 5_000_000)  # a later, higher voucher pays only the difference
    [second] = await rig.cashout.cash_out()
    assert second.amount_nanoton == 5_000_000 * FEE
    assert await rig.balance(OWNER) == (TOKENS + 5_000_000) * FEE
    ledger = await read_ledger(rig.book.store)
    assert ledger.totals.paid_nanoton == await rig.balance(OWNER)
    assert ledger.totals.earned_nanoton >= ledger.totals.vouchered_nanoton
    assert ledger.totals.vouchered_nanoton >= ledger.totals.paid_nanoton


async def test_the_policy_waits_for_the_threshold_and_a_fair_fee(rig: Rig) -> None:
    rig.hold(1_000)  # 80 000 nanotons: far below the threshold
    assert await rig.cashout.tick() == []
    costly = rig.new_service(dataclasses.replace(EAGER, threshold_nanoton=0, max_fee_percent=1))
    assert await costly.tick() == []  # the fee would be most of it
    rig.hold(TOKENS)
    paid = await rig.cashout.tick()
    assert [p.state for p in paid] == [PayoutState.PAID, PayoutState.PAID]
    assert await rig.cashout.tick() == []  # nothing new to cash


async def test_a_retired_contract_is_cashed_out_below_the_threshold(rig: Rig) -> None:
    rig.hold(1_000_000)
    account = rig.book.account(rig.worker_sc)
    assert account is not None
    rig.book.put(dataclasses.replace(account, params_version=ROOT.params_version - 1))
    lazy = rig.new_service(dataclasses.replace(EAGER, auto_cashout=False))
    assert [p.state for p in await lazy.tick()] == [PayoutState.PAID, PayoutState.PAID]


@pytest.mark.allow_log_warnings  # the refusal is logged with its reason
async def test_a_node_wallet_out_of_gas_sends_nothing_and_says_why(tmp_path: Path) -> None:
    made = await make_rig(tmp_path, node_gas=TON // 10)
    try:
        made.hold(TOKENS)
        with pytest.raises(CashoutError, match=r"The node wallet has 0\.1 TON"):
            await made.cashout.cash_out()
        assert await made.book.store.payouts() == []  # nothing recorded, nothing sent
        assert "Top it up" in made.cashout.status.value.reason
        await made.chain.mint(made.sender.address, 3 * TON)  # the user topped it up
        assert [p.state for p in await made.cashout.tick()] == [PayoutState.PAID] * 2
    finally:
        await made.book.aclose()
        await made.chain.aclose()


@pytest.mark.allow_log_warnings  # the refusal is logged with its reason
async def test_a_proxy_contract_that_cannot_pay_is_not_sent_a_voucher(tmp_path: Path) -> None:
    made = await make_rig(tmp_path, proxy_float=TON // 100)
    try:
        made.hold(TOKENS)
        with pytest.raises(CashoutError, match=r"less than the 0\.8 TON it owes you"):
            await made.cashout.cash_out()
        account = made.book.account(made.worker_sc)
        assert account is not None
        assert account.paid_tokens == 0
        assert account.cashable_tokens
        # The deploy went out (it costs the same either way); the voucher is kept for later.
        assert [p.kind for p in await made.book.store.payouts()] == [PayoutKind.DEPLOY]
        await made.chain.mint(made.proxy_sc, 5 * TON)  # clients paid in meanwhile
        [payout] = await made.cashout.cash_out()
        assert payout.state is PayoutState.PAID
        assert payout.amount_nanoton == TOKENS * FEE == await made.balance(OWNER)
    finally:
        await made.book.aclose()
        await made.chain.aclose()


async def test_a_crash_after_the_payout_record_before_the_pending_send(rig: Rig) -> None:
    await _second_payout_recorded(rig)  # ... and the process died here
    again = rig.new_service()
    [settled] = await again.settle_open()
    assert settled.state is PayoutState.NOT_SENT
    [payout] = await again.cash_out()
    assert payout.amount_nanoton == TOKENS * FEE
    assert await rig.balance(OWNER) == 2 * TOKENS * FEE  # each token paid once


async def test_a_crash_after_the_pending_send_before_the_broadcast(rig: Rig) -> None:
    record = await _second_payout_recorded(rig)
    PendingSendStore(rig.tmp / "pending").add(record)  # written, never broadcast
    with pytest.raises(WithdrawalError, match="not confirmed yet"):  # one message at a time
        await rig.sender.submit(record)
    again = rig.new_service()
    [settled] = await again.settle_open()  # re-broadcasts the very same message
    assert settled.state is PayoutState.PAID
    assert await rig.balance(OWNER) == 2 * TOKENS * FEE
    assert await again.tick() == []


async def test_a_crash_after_the_broadcast_before_the_confirmation(rig: Rig) -> None:
    record = await _second_payout_recorded(rig)
    await rig.sender.submit(record)  # on the chain; the process died before settling
    again = rig.new_service()
    [settled] = await again.settle_open()
    assert settled.state is PayoutState.PAID
    assert settled.amount_nanoton == TOKENS * FEE
    ledger = await read_ledger(rig.book.store)
    assert ledger.totals.paid_nanoton == await rig.balance(OWNER) == 2 * TOKENS * FEE
    assert await again.tick() == []


async def test_nothing_to_cash_out_is_a_clear_error(rig: Rig) -> None:
    with pytest.raises(CashoutError, match="Nothing to cash out"):
        await rig.cashout.cash_out()
    with pytest.raises(CashoutError, match="No earnings from proxy"):
        await rig.cashout.cash_out(raw_address(OWNER))


async def test_jobs_move_from_served_to_vouchered_to_paid(rig: Rig) -> None:
    payments = rig.book.open(
        proxy_sc=rig.proxy_sc,
        proxy_public_key=bytes(PROXY_KEY.verify_key),
        worker_sc=rig.worker_sc,
        owner=OWNER,
    )
    payments.billed(b"a" * 32, TOKENS, TOKENS)
    payments.billed(b"b" * 32, TOKENS, 2 * TOKENS)
    payments.apply(rig.voucher(TOKENS), 2 * TOKENS, 2 * TOKENS, strict=False)
    await rig.book.flush()
    states = [j.state for j in (await read_ledger(rig.book.store)).jobs]
    assert states == [JobState.VOUCHERED, JobState.SERVED]
    await rig.cashout.cash_out()
    await rig.book.flush()
    ledger = await read_ledger(rig.book.store)
    assert [j.state for j in ledger.jobs] == [JobState.PAID, JobState.SERVED]
    assert ledger.jobs[0].payout_id == ledger.payouts[-1].id
    csv_rows = ledger.to_csv().splitlines()
    assert csv_rows[0].startswith("type,time,id,proxy,tokens")
    assert len(csv_rows) == 1 + 2 + 2  # header, two jobs, deploy and payout


async def _second_payout_recorded(rig: Rig) -> PendingSend:
    """A first cash-out as usual, then a second one signed and recorded: the moment a crash
    would hit (what the test does next decides how far it got)."""
    rig.hold(TOKENS)
    await rig.cashout.cash_out()
    rig.hold(TOKENS * 2)
    account = rig.book.account(rig.worker_sc)
    assert account is not None
    record = await rig.sender.sign(_payout_message(rig, account.voucher))
    await _record_payout(rig, record)
    return record


def _payout_message(rig: Rig, voucher: bytes | None):  # type: ignore[no-untyped-def]
    from app.wallet.cocoon_contracts import WORKER_PAYOUT_VALUE, repack_voucher
    from app.wallet.node_sender import ContractMessage

    assert voucher is not None
    return ContractMessage(
        destination=raw_address(rig.worker_sc),
        value=WORKER_PAYOUT_VALUE,
        body=repack_voucher(voucher, excesses=rig.sender.address),
    )


async def _record_payout(rig: Rig, record):  # type: ignore[no-untyped-def]
    from app.network.payment_store import Payout

    account = rig.book.account(rig.worker_sc)
    assert account is not None
    return await rig.book.store.add_payout(
        Payout(
            worker_sc=account.worker_sc,
            proxy_sc=account.proxy_sc,
            kind=PayoutKind.PAYOUT,
            tokens_from=account.paid_tokens,
            tokens_to=account.voucher_tokens,
            expected_nanoton=account.cashable_tokens * FEE,
            wallet_address=rig.sender.address,
            seqno=record.seqno,
            valid_until=record.valid_until,
            boc=record.boc,
            normalized_hash=record.normalized_hash,
        )
    )


@pytest.mark.allow_log_warnings  # the refusal is logged
async def test_a_bounced_payout_is_failed_with_the_reason_and_not_retried(rig: Rig) -> None:
    rig.hold(TOKENS)
    await rig.cashout.cash_out()  # the worker contract now stores TOKENS
    account = rig.book.account(rig.worker_sc)
    assert account is not None
    # This book lost track of the payout (say, restored from an old backup): it would send the
    # same voucher again, which the worker contract refuses and bounces.
    rig.book.put(dataclasses.replace(account, paid_tokens=0))
    node_before = await rig.balance(rig.sender.address)
    [bounced] = await rig.cashout.cash_out()
    assert bounced.state is PayoutState.FAILED
    assert "refused it (exit code 1000)" in bounced.error
    assert bounced.amount_nanoton == 0
    # The gas came back less the fees, and the book learnt what the contract stores.
    assert node_before - await rig.balance(rig.sender.address) == bounced.fee_nanoton
    assert bounced.fee_nanoton < 20_000_000
    account = rig.book.account(rig.worker_sc)
    assert account is not None
    assert account.paid_tokens == TOKENS
    assert await rig.cashout.tick() == []  # nothing left to retry
    assert await rig.balance(OWNER) == TOKENS * FEE  # paid once
