"""Withdrawals against the simulated chain: planning rules, warnings, bad input, offline, seqno."""

# pytoniq-core addresses are read back with its (unannotated) methods.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pytoniq_core.boc.address import Address
from pytoniq_core.crypto.crc import crc16

from app.core.money import AmountError, Nanoton
from app.wallet.addresses import AddressError, parse_address
from app.wallet.chain import (
    AccountState,
    ChainError,
    ChainOffline,
    ChainTimeout,
    MessageRejected,
)
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair, derive_keypair, generate_mnemonic
from app.wallet.pending import PendingSendError, PendingSendStore, SendStatus
from app.wallet.simulated_chain import SimulatedChain
from app.wallet.transfer import SendMode, TransferError, TransferOrder, sign_transfer
from app.wallet.withdrawal_warnings import lookalike_of
from app.wallet.withdrawals import (
    DEFAULT_FEE,
    InsufficientBalanceError,
    WarningKind,
    WithdrawalError,
    WithdrawalPlan,
    WithdrawalRequest,
    Withdrawals,
)

TON = 10**9
NOW = 1_790_000_000
WALLET_ID = "v5r1-mainnet-test"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


class ScriptedChain(SimulatedChain):
    """The simulated chain with scriptable network trouble on top (offline, rejections)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(None, clock=clock)
        self.offline_reads = False
        self.send_failure: ChainError | None = None
        self.before_send: Any = None
        self.fee_result: Any = "emulate"
        self.frozen: set[str] = set()
        self.sent: list[bytes] = []

    async def get_account_state(self, address: str) -> AccountState:
        if self.offline_reads:
            raise ChainOffline()
        state = await super().get_account_state(address)
        if state.address in self.frozen:
            return AccountState(state.address, state.balance, "frozen")
        return state

    async def send_boc(self, boc: bytes) -> None:
        if self.before_send is not None:
            hook, self.before_send = self.before_send, None
            await hook()
        if self.send_failure is not None:
            raise self.send_failure
        self.sent.append(boc)
        await super().send_boc(boc)

    async def emulate_fee(self, boc: bytes) -> Nanoton | None:
        if self.fee_result == "emulate":
            return await super().emulate_fee(boc)
        if isinstance(self.fee_result, Exception):
            raise self.fee_result
        return None


def _stranger() -> WalletContract:
    keys = derive_keypair(generate_mnemonic())
    return WalletContract(WalletVersion.V5R1, TonNetwork.MAINNET, keys.public_key)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def chain(clock: Clock) -> AsyncIterator[ScriptedChain]:
    chain = ScriptedChain(clock)
    await chain.start()
    yield chain
    await chain.aclose()


@pytest.fixture
def contract(vector_keys: KeyPair) -> WalletContract:
    return WalletContract(WalletVersion.V5R1, TonNetwork.MAINNET, vector_keys.public_key)


@pytest.fixture
def store(tmp_path: Path) -> PendingSendStore:
    return PendingSendStore(tmp_path / "wallets")


@pytest.fixture
async def withdrawals(
    chain: ScriptedChain, contract: WalletContract, store: PendingSendStore
) -> Withdrawals:
    await chain.mint(contract.raw_address, 50 * TON)
    return Withdrawals(chain, contract, WALLET_ID, store, large_first_send=Nanoton(20 * TON))


async def _send(
    withdrawals: Withdrawals, keys: KeyPair, request: WithdrawalRequest, **plan_kwargs: Any
) -> tuple[WithdrawalPlan, Any]:
    plan = await withdrawals.plan(request, **plan_kwargs)
    outcome = await withdrawals.execute(plan, keys, confirmed={w.kind for w in plan.warnings})
    return plan, outcome


async def test_first_send_deploys_and_is_confirmed_by_its_transaction(
    withdrawals: Withdrawals, chain: ScriptedChain, vector_keys: KeyPair, store: PendingSendStore
) -> None:
    dest = _stranger()
    request = WithdrawalRequest(dest.display_address, "1.5", comment="rent")
    plan = await withdrawals.plan(request)
    assert (plan.seqno, plan.deployed, plan.bounce, plan.destination_active) == (
        0,
        False,
        False,
        False,
    )
    assert plan.amount == 1_500_000_000
    assert plan.mode is SendMode.PAY_FEES_SEPARATELY
    assert plan.fee_estimate not in (0, DEFAULT_FEE)
    assert plan.warnings == ()
    outcome = await withdrawals.execute(plan, vector_keys)
    assert outcome.status is SendStatus.PENDING
    assert store.get(WALLET_ID) is not None  # kept until confirmed
    confirmed = await withdrawals.check(outcome.record)
    assert confirmed.status is SendStatus.SENT
    assert confirmed.transaction is not None
    assert confirmed.transaction.total_fees <= plan.fee_estimate
    assert store.get(WALLET_ID) is None
    assert (await chain.get_account_state(dest.raw_address)).balance == 1_500_000_000
    [out] = confirmed.transaction.out_msgs
    assert (out.comment, out.bounce) == ("rent", False)


async def test_bounce_follows_the_address_flag_and_the_destination_state(
    withdrawals: Withdrawals,
    chain: ScriptedChain,
    contract: WalletContract,
    vector_keys: KeyPair,
    tmp_path: Path,
) -> None:
    inactive = await withdrawals.plan(WithdrawalRequest(_stranger().forms.mainnet_bounceable, "1"))
    assert inactive.bounce is False
    assert [w.kind for w in inactive.warnings] == [WarningKind.INACTIVE_DESTINATION]
    # After its first send the test wallet is active: send to it from another wallet.
    await _send(withdrawals, vector_keys, WithdrawalRequest(_stranger().display_address, "1"))
    other = Withdrawals(chain, _stranger(), "other", PendingSendStore(tmp_path / "other"))
    await chain.mint(other.wallet_address, 5 * TON)
    plan = await other.plan(WithdrawalRequest(contract.forms.mainnet_bounceable, "1"))
    assert plan.destination_active
    assert plan.bounce is True
    plan = await other.plan(WithdrawalRequest(contract.display_address, "1"))
    assert plan.bounce is False  # UQ: the user asked for non-bounceable


async def test_send_all_uses_mode_130_and_empties_the_wallet(
    withdrawals: Withdrawals, chain: ScriptedChain, vector_keys: KeyPair
) -> None:
    dest = _stranger()
    plan, outcome = await _send(
        withdrawals, vector_keys, WithdrawalRequest(dest.display_address, "ignored", True)
    )
    assert plan.mode is SendMode.SEND_ALL
    assert plan.amount == 50 * TON - plan.fee_estimate
    assert outcome.record.amount == 0
    assert outcome.record.send_all
    assert (await withdrawals.check(outcome.record)).status is SendStatus.SENT
    assert (await chain.get_account_state(withdrawals.wallet_address)).balance == 0
    received = (await chain.get_account_state(dest.raw_address)).balance
    assert plan.amount <= received < 50 * TON


@pytest.mark.parametrize(
    ("destination", "error"),
    [
        ("UQAXl6V4aqv9oAkv1hAFcWvEnkBp_WO_AQZw-pdRIoRHEwA-", "checksum"),
        ("", "Enter a TON address"),
        ("   ", "Enter a TON address"),
        ("0QAXl6V4aqv9oAkv1hAFcWvEnkBp_WO_AQZw-pdRIoRHE7u1", "testnet address"),
    ],
    ids=["bad-checksum", "empty", "whitespace", "testnet-on-mainnet"],
)
async def test_bad_destinations_are_refused(
    withdrawals: Withdrawals, store: PendingSendStore, destination: str, error: str
) -> None:
    with pytest.raises(AddressError, match=error):
        await withdrawals.plan(WithdrawalRequest(destination, "1"))
    assert store.all() == []


async def test_wrong_tag_is_refused(withdrawals: Withdrawals) -> None:
    body = bytes([0x22, 0]) + bytes(32)
    text = base64.urlsafe_b64encode(body + crc16(body)).decode()
    with pytest.raises(AddressError, match="Unknown TON address type"):
        await withdrawals.plan(WithdrawalRequest(text, "1"))


@pytest.mark.parametrize(
    ("amount", "error", "kind"),
    [
        ("0", "greater than zero", AmountError),
        ("-1", "cannot be negative", AmountError),
        ("1.0000000001", "at most 9 decimal places", AmountError),
        ("", "Enter an amount", AmountError),
        ("49.999", "balance is too low", InsufficientBalanceError),
        ("1000", "balance is too low", InsufficientBalanceError),
    ],
    ids=["zero", "negative", "over-precise", "empty", "fee-not-covered", "over-balance"],
)
async def test_bad_amounts_are_refused(
    withdrawals: Withdrawals, amount: str, error: str, kind: type[Exception]
) -> None:
    with pytest.raises(kind, match=error):
        await withdrawals.plan(WithdrawalRequest(_stranger().display_address, amount))


async def test_send_all_with_nothing_left_after_fees(
    chain: ScriptedChain, store: PendingSendStore
) -> None:
    poor = Withdrawals(chain, _stranger(), "poor", store)
    await chain.mint(poor.wallet_address, 1000)
    with pytest.raises(InsufficientBalanceError, match="Nothing would be left"):
        await poor.plan(WithdrawalRequest(_stranger().display_address, send_all=True))


async def test_comment_too_long_is_refused(withdrawals: Withdrawals) -> None:
    with pytest.raises(TransferError, match="comment is too long"):
        await withdrawals.plan(
            WithdrawalRequest(_stranger().display_address, "1", comment="x" * 251)
        )


async def test_own_address_needs_confirmation(
    withdrawals: Withdrawals, contract: WalletContract, vector_keys: KeyPair
) -> None:
    plan = await withdrawals.plan(WithdrawalRequest(contract.display_address, "1"))
    assert [w.kind for w in plan.warnings] == [WarningKind.OWN_ADDRESS]
    with pytest.raises(WithdrawalError, match="Confirm the warnings") as info:
        await withdrawals.execute(plan, vector_keys)
    assert "own_address" in info.value.hint
    outcome = await withdrawals.execute(plan, vector_keys, confirmed={WarningKind.OWN_ADDRESS})
    assert outcome.status is SendStatus.PENDING


async def test_raw_address_needs_confirmation(withdrawals: Withdrawals) -> None:
    plan = await withdrawals.plan(WithdrawalRequest(_stranger().raw_address, "1"))
    assert [w.kind for w in plan.warnings] == [WarningKind.RAW_ADDRESS]
    assert plan.bounce is False


def _lookalike(address: str) -> str:
    """Another account whose friendly forms share the first and last characters.

    CRC16 (XMODEM) is linear, so XOR-ing the polynomial 0x11021 into the middle of the hash
    leaves the checksum, and so the last characters, unchanged.
    """
    parsed = Address(address)
    middle = bytearray(parsed.hash_part)
    for i, byte in enumerate(b"\x01\x10\x21"):
        middle[14 + i] ^= byte
    return str(Address((0, bytes(middle))).to_str(is_bounceable=False))


async def test_address_poisoning_lookalike_is_flagged(withdrawals: Withdrawals) -> None:
    known = _stranger().display_address
    poisoned = _lookalike(known)
    assert poisoned != known
    assert (poisoned[:4], poisoned[-4:]) == (known[:4], known[-4:])
    plan = await withdrawals.plan(WithdrawalRequest(poisoned, "1"), known_destinations=[known])
    [warning] = plan.warnings
    assert warning.kind is WarningKind.LOOKALIKE_ADDRESS
    assert known in warning.message
    # The genuine address and unrelated ones are not flagged; junk in the history is ignored.
    plan = await withdrawals.plan(
        WithdrawalRequest(known, "1"), known_destinations=["junk", known, poisoned[:-1]]
    )
    assert plan.warnings == ()


def test_lookalike_of_raw_input() -> None:
    known = "0:" + "ab" * 16 + "cd" * 16
    typed = "0:" + "abab" + "00" * 28 + "cdcd"
    parsed = parse_address(typed, TonNetwork.MAINNET)
    assert lookalike_of(typed, parsed, [known]) == known
    assert lookalike_of(typed, parsed, ["0:" + "11" * 32]) is None


async def test_large_first_send_suggests_a_test_transfer(withdrawals: Withdrawals) -> None:
    dest = _stranger().display_address
    plan = await withdrawals.plan(WithdrawalRequest(dest, "25"))
    [warning] = plan.warnings
    assert warning.kind is WarningKind.LARGE_FIRST_SEND
    assert "25 TON" in warning.message
    assert "small test amount" in warning.message
    known = await withdrawals.plan(WithdrawalRequest(dest, "25"), known_destinations=[dest])
    assert known.warnings == ()
    small = await withdrawals.plan(WithdrawalRequest(dest, "20"))
    assert small.warnings == ()


async def test_offline_planning_is_a_clear_error(
    withdrawals: Withdrawals, chain: ScriptedChain, store: PendingSendStore
) -> None:
    chain.offline_reads = True
    with pytest.raises(ChainOffline, match="cannot be reached"):
        await withdrawals.plan(WithdrawalRequest(_stranger().display_address, "1"))
    assert store.all() == []


@pytest.mark.parametrize("failure", [ChainOffline(), ChainTimeout("send", 10)], ids=str)
async def test_offline_broadcast_keeps_the_record_and_reconcile_rebroadcasts_the_same_boc(
    withdrawals: Withdrawals,
    chain: ScriptedChain,
    vector_keys: KeyPair,
    store: PendingSendStore,
    failure: ChainError,
) -> None:
    dest = _stranger()
    plan = await withdrawals.plan(WithdrawalRequest(dest.display_address, "2"))
    chain.send_failure = failure
    outcome = await withdrawals.execute(plan, vector_keys)
    assert outcome.status is SendStatus.UNKNOWN
    record = store.get(WALLET_ID)
    assert record == outcome.record
    with pytest.raises(WithdrawalError, match="not confirmed yet"):
        await withdrawals.plan(WithdrawalRequest(dest.display_address, "2"))
    with pytest.raises(PendingSendError, match="not confirmed yet"):
        await withdrawals.execute(plan, vector_keys)
    chain.send_failure = None
    pending = await withdrawals.reconcile()
    assert pending is not None
    assert pending.status is SendStatus.PENDING
    assert chain.sent == [record.boc]  # the same bytes, never a new signature
    done = await withdrawals.reconcile()
    assert done is not None
    assert done.status is SendStatus.SENT
    assert await withdrawals.reconcile() is None
    assert (await chain.get_account_state(dest.raw_address)).balance == 2 * TON


async def test_unsent_message_expires_as_not_sent(
    withdrawals: Withdrawals,
    chain: ScriptedChain,
    clock: Clock,
    vector_keys: KeyPair,
    store: PendingSendStore,
) -> None:
    plan = await withdrawals.plan(WithdrawalRequest(_stranger().display_address, "2"))
    chain.send_failure = ChainOffline()
    await withdrawals.execute(plan, vector_keys)
    clock.now += 301
    chain.send_failure = None
    outcome = await withdrawals.reconcile()
    assert outcome is not None
    assert outcome.status is SendStatus.NOT_SENT
    assert chain.sent == []
    assert store.get(WALLET_ID) is None


async def test_seqno_used_by_another_message_means_not_sent_and_no_resend(
    withdrawals: Withdrawals,
    chain: ScriptedChain,
    contract: WalletContract,
    vector_keys: KeyPair,
    store: PendingSendStore,
) -> None:
    dest, rival_dest = _stranger(), _stranger()
    plan = await withdrawals.plan(WithdrawalRequest(dest.display_address, "3"))

    async def rival_send() -> None:  # e.g. the same wallet used from another device
        rival = sign_transfer(
            contract,
            vector_keys,
            TransferOrder(rival_dest.address, Nanoton(TON), bounce=False),
            seqno=0,
            valid_until=NOW + 60,
            deployed=False,
        )
        await SimulatedChain.send_boc(chain, rival.boc)

    chain.before_send = rival_send
    outcome = await withdrawals.execute(plan, vector_keys)
    assert outcome.status is SendStatus.NOT_SENT
    assert "same sequence number" in outcome.message
    assert store.get(WALLET_ID) is None
    assert (await chain.get_account_state(dest.raw_address)).status == "nonexist"


async def test_seqno_used_by_this_very_message_is_confirmed_not_resent(
    withdrawals: Withdrawals, chain: ScriptedChain, vector_keys: KeyPair
) -> None:
    dest = _stranger()
    plan = await withdrawals.plan(WithdrawalRequest(dest.display_address, "3"))
    chain.send_failure = ChainTimeout("send", 10)  # it landed, but the answer was lost
    outcome = await withdrawals.execute(plan, vector_keys)
    await SimulatedChain.send_boc(chain, outcome.record.boc)
    chain.send_failure = MessageRejected("exitcode=133", seqno_used=True, exit_code=133)
    resolved = await withdrawals.reconcile()
    assert resolved is not None
    assert resolved.status is SendStatus.SENT
    assert (await chain.get_account_state(dest.raw_address)).balance == 3 * TON


async def test_seqno_used_while_still_unresolved_stays_pending(
    withdrawals: Withdrawals, chain: ScriptedChain, vector_keys: KeyPair, store: PendingSendStore
) -> None:
    plan = await withdrawals.plan(WithdrawalRequest(_stranger().display_address, "3"))
    chain.send_failure = MessageRejected("exitcode=133", seqno_used=True, exit_code=133)
    outcome = await withdrawals.execute(plan, vector_keys)
    assert outcome.status is SendStatus.PENDING
    assert "exitcode=133" in outcome.message
    assert store.get(WALLET_ID) is not None


async def test_rejected_message_is_not_sent_and_the_record_is_dropped(
    withdrawals: Withdrawals, chain: ScriptedChain, vector_keys: KeyPair, store: PendingSendStore
) -> None:
    plan = await withdrawals.plan(WithdrawalRequest(_stranger().display_address, "3"))
    chain.send_failure = MessageRejected("exitcode=37", seqno_used=False, exit_code=37)
    with pytest.raises(WithdrawalError, match="exitcode=37") as info:
        await withdrawals.execute(plan, vector_keys)
    assert info.value.hint == "Nothing was sent."
    assert store.get(WALLET_ID) is None


async def test_wallet_changed_between_plan_and_execute(
    withdrawals: Withdrawals, vector_keys: KeyPair, store: PendingSendStore
) -> None:
    plan = await withdrawals.plan(WithdrawalRequest(_stranger().display_address, "1"))
    first = await withdrawals.execute(plan, vector_keys)
    await withdrawals.check(first.record)
    with pytest.raises(WithdrawalError, match="wallet changed"):
        await withdrawals.execute(plan, vector_keys)
    assert store.get(WALLET_ID) is None


async def test_frozen_wallet_cannot_send(withdrawals: Withdrawals, chain: ScriptedChain) -> None:
    chain.frozen.add(withdrawals.wallet_address)
    with pytest.raises(WithdrawalError, match="frozen"):
        await withdrawals.plan(WithdrawalRequest(_stranger().display_address, "1"))


@pytest.mark.parametrize("result", [None, ChainTimeout("estimate", 1)], ids=["none", "error"])
async def test_fee_falls_back_to_the_default_without_emulation(
    withdrawals: Withdrawals, chain: ScriptedChain, result: object
) -> None:
    chain.fee_result = result
    plan = await withdrawals.plan(WithdrawalRequest(_stranger().display_address, "1"))
    assert plan.fee_estimate == DEFAULT_FEE


async def test_confirmation_finds_the_send_behind_many_later_transactions(
    withdrawals: Withdrawals, chain: ScriptedChain, vector_keys: KeyPair
) -> None:
    dest = _stranger()
    _, outcome = await _send(withdrawals, vector_keys, WithdrawalRequest(dest.display_address, "1"))
    for _ in range(40):  # a busy worker wallet: earnings keep arriving
        await chain.mint(withdrawals.wallet_address, 1000)
    confirmed = await withdrawals.check(outcome.record)
    assert confirmed.status is SendStatus.SENT


async def test_history_search_stops_at_the_signing_time(
    chain: ScriptedChain,
    clock: Clock,
    contract: WalletContract,
    vector_keys: KeyPair,
    store: PendingSendStore,
) -> None:
    clock.now = NOW - 100_000
    await chain.mint(contract.raw_address, 10 * TON)
    for _ in range(20):  # old history that cannot hold a message signed much later
        await chain.mint(contract.raw_address, 1000)
    clock.now = NOW
    withdrawals = Withdrawals(chain, contract, WALLET_ID, store)
    plan = await withdrawals.plan(WithdrawalRequest(_stranger().display_address, "1"))
    chain.send_failure = ChainOffline()
    outcome = await withdrawals.execute(plan, vector_keys)
    rival = sign_transfer(
        contract,
        vector_keys,
        TransferOrder(_stranger().address, Nanoton(TON), bounce=False),
        seqno=0,
        valid_until=NOW + 60,
        deployed=False,
    )
    await SimulatedChain.send_boc(chain, rival.boc)
    resolved = await withdrawals.check(outcome.record)
    assert resolved.status is SendStatus.NOT_SENT
