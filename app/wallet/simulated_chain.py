"""``SimulatedChain``: a local TON network for devnet and tests, implementing ``ChainBackend``.

It accepts exactly the external messages the official V4R2/V5R1 wallet contracts would accept
(see ``wallet_messages``), moves balances with the send modes' semantics (+1 pay fees separately,
+2 ignore errors, +32 destroy when empty, +128 carry all), bounces bounceable messages sent to
accounts that are not active, and keeps every transaction. Fees follow :class:`FeeModel`: flat
amounts close to mainnet's for a wallet transfer, not a gas computation.

What an internal message does to its destination (a StateInit deploy, a COCOON contract registered
with :meth:`SimulatedChain.register_cocoon_codes`, a bounce) is ``sim_contracts``'s; every message
a send causes is delivered, oldest first, inside the same ledger transaction.
"""

# pytoniq-core ships py.typed but leaves most methods unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, TypeVar

from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.account import StateInit

from app.core.money import Nanoton
from app.core.observable import Observable
from app.wallet.chain import (
    AccountState,
    ChainError,
    ChainTimeout,
    ChainTransaction,
    GetMethodFailed,
    InboundMessage,
    MessageRejected,
    OutboundMessage,
    raw_address,
    text_comment,
    wallet_seqno,
)
from app.wallet.cocoon_contracts import CocoonRootParams
from app.wallet.cocoon_execution import CocoonCodes, InternalMessage
from app.wallet.sim_contracts import contract_deployed, deliver, deployable, inbound, outbound
from app.wallet.sim_ledger import Ledger, LedgerWriter, encode_transaction
from app.wallet.wallet_messages import (
    ExitCode,
    ExternalEnvelope,
    MalformedMessageError,
    OutAction,
    WalletRefusedError,
    bump_seqno,
    check_request,
    parse_envelope,
    read_wallet_data,
    wallet_kind,
)

# Where faucet money comes from (the zero address in the masterchain).
FAUCET_ADDRESS: Final = "-1:" + "00" * 32
_SEQNO_EXITS: Final = frozenset({ExitCode.V4_SEQNO, ExitCode.V5_SEQNO})
_MODE_PAY_FEES_SEPARATELY: Final = 1
_MODE_IGNORE_ERRORS: Final = 2
_MODE_DESTROY_IF_EMPTY: Final = 32
_MODE_CARRY_ALL: Final = 128
_NO_ACTIONS_EXIT: Final = 0
# Far more than any chain of COCOON messages needs: a bound so that a mistake cannot spin forever.
_MAX_MESSAGES_PER_SEND: Final = 1000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FeeModel:
    """Flat fees in nanotons (close to mainnet for plain wallet transfers, by design simple)."""

    external: int = 1_700_000  # import + compute of one wallet external message
    deploy: int = 3_000_000  # extra when a message deploys its destination (state_init)
    forward: int = 400_000  # per outgoing internal message
    bounce: int = 400_000  # kept by the network when a message bounces back
    # Compute phases of the COCOON contracts (signature check, address hashing: ~10k gas). With
    # the wallet external and four forwards a voucher payout costs about 0.0104 TON in all.
    worker_compute: int = 3_000_000
    proxy_compute: int = 4_000_000


@dataclass(slots=True)
class _Outcome:
    """What one accepted external did to its wallet."""

    account: AccountState
    fees: int
    sends: list[tuple[OutAction, int]]
    exit_code: int
    action_success: bool | None
    aborted: bool


def _now() -> int:
    return int(time.time())


class SimulatedChain:
    """A persistent (SQLite file) or in-memory local TON network."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        clock: Callable[[], int] = _now,
        fees: FeeModel | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._ledger = Ledger(path)
        self._clock = clock
        self.fees = fees or FeeModel()
        self._timeout = timeout
        self._online = Observable(True)
        self._cocoon = CocoonCodes()

    @property
    def online(self) -> Observable[bool]:
        return self._online

    async def start(self) -> None:
        await self._run(lambda: self._ledger.account(FAUCET_ADDRESS), "open the local network")

    async def aclose(self) -> None:
        self._ledger.close()

    async def _run(self, work: Callable[[], T], what: str) -> T:
        try:
            return await asyncio.wait_for(asyncio.to_thread(work), self._timeout)
        except TimeoutError as exc:
            raise ChainTimeout(what, self._timeout) from exc

    # ChainBackend -------------------------------------------------------------------------

    async def get_account_state(self, address: str) -> AccountState:
        raw = raw_address(address)
        return await self._run(lambda: self._ledger.account(raw), "read an account")

    async def get_seqno(self, address: str) -> int:
        return wallet_seqno(await self.get_account_state(address))

    async def get_server_time(self) -> int:
        return self._clock()

    async def send_boc(self, boc: bytes) -> None:
        await self._run(lambda: self._send(boc, commit=True, check_signature=True), "send")

    async def emulate_fee(self, boc: bytes) -> Nanoton | None:
        """Fees the message would cost, signature not checked (so unsigned drafts work)."""

        def emulate() -> Nanoton | None:
            try:
                return self._send(boc, commit=False, check_signature=False)
            except MessageRejected:
                return None

        return await self._run(emulate, "estimate the fee")

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
        txs = await self._run(
            lambda: self._ledger.transactions(raw, limit, from_lt), "read transactions"
        )
        if (
            from_lt is not None
            and from_hash is not None
            and (not txs or txs[0].lt != from_lt or txs[0].hash != from_hash)
        ):
            raise ChainError("That transaction is not in this account's history.")
        return txs

    async def run_get_method(self, address: str, method: str, stack: list[Any]) -> list[Any]:
        del stack  # the wallet get-methods take no arguments
        state = await self.get_account_state(address)
        if state.status != "active" or state.code is None or state.data is None:
            raise GetMethodFailed(method, -256)
        kind = wallet_kind(Cell.one_from_boc(state.code))
        if kind is None:  # the COCOON contracts' get-methods are not modelled
            raise GetMethodFailed(method, 11)
        data = read_wallet_data(kind, Cell.one_from_boc(state.data))
        values = {
            "seqno": data.seqno,
            "get_public_key": int.from_bytes(data.public_key, "big"),
            "get_subwallet_id": data.wallet_id,
        }
        if method not in values:
            raise GetMethodFailed(method, 11)
        return [values[method]]

    # Local network only -------------------------------------------------------------------

    async def mint(
        self,
        address: str,
        amount: int,
        *,
        comment: str | None = None,
        source: str = FAUCET_ADDRESS,
    ) -> ChainTransaction:
        """Credit ``amount`` nanotons to ``address`` out of thin air (faucet, tests, settlement)."""
        if type(amount) is not int or amount <= 0:
            raise ValueError("mint amount must be a positive number of nanotons")
        raw, src = raw_address(address), raw_address(source)
        message = InternalMessage(src, raw, amount, False, _comment_body(comment))

        def credit() -> ChainTransaction:
            with self._ledger.write() as ledger:
                tx, sent = self._deliver(ledger, message)
                self._drain(ledger, sent)
                return tx

        return await self._run(credit, "mint")

    async def credit_earnings(
        self, address: str, amount: int, *, source: str, comment: str | None = None
    ) -> ChainTransaction:
        """Devnet settlement hook: pay a worker's earnings from a (simulated) contract address."""
        return await self.mint(address, amount, comment=comment, source=source)

    def register_cocoon_codes(self, root: CocoonRootParams) -> None:
        """Run the COCOON worker/proxy models for accounts with ``root``'s contract codes.

        Kept in memory: every process sharing a network file registers the codes itself."""
        self._cocoon.register(root)

    async def deploy_contract(self, state_init: StateInit, *, balance: int) -> str:
        """Put a contract on the network with ``balance`` nanotons from the faucet (local setup,
        e.g. the devnet's proxy contract); its raw address. A deployed one is left as it is."""
        address, code, data = deployable(state_init, balance)

        def deploy() -> None:
            with self._ledger.write() as ledger:
                deployed = contract_deployed(ledger.account(address), code, data, balance)
                if deployed is None:
                    return
                in_msg = InboundMessage(False, FAUCET_ADDRESS, Nanoton(balance), None, False, False)
                self._new_tx(ledger, deployed, in_msg=in_msg, compute=(True, 0))

        await self._run(deploy, "deploy a contract")
        return address

    # Message processing (runs in a worker thread, inside one ledger transaction) -----------

    def _send(self, boc: bytes, *, commit: bool, check_signature: bool) -> Nanoton:
        try:
            envelope = parse_envelope(boc)
        except MalformedMessageError as exc:
            raise MessageRejected(str(exc), seqno_used=False) from exc
        with self._ledger.write(commit=commit) as ledger:
            account = ledger.account(envelope.destination)
            outcome = self._execute(account, envelope, check_signature=check_signature)
            tx = self._record_external(ledger, outcome, envelope)
            self._drain(
                ledger,
                (
                    InternalMessage(
                        envelope.destination,
                        action.destination,
                        value,
                        action.bounce,
                        action.body,
                        state_init=action.state_init,
                    )
                    for action, value in outcome.sends
                ),
            )
            return tx.total_fees

    def _execute(
        self, account: AccountState, envelope: ExternalEnvelope, *, check_signature: bool
    ) -> _Outcome:
        code_boc, data_boc, fee = account.code, account.data, self.fees.external
        status = account.status
        if status == "frozen":
            raise MessageRejected("the account is frozen", seqno_used=False)
        if status != "active":
            if envelope.init_code is None or envelope.init_data is None:
                raise MessageRejected("the wallet is not deployed yet", seqno_used=False)
            if envelope.init_hash != bytes.fromhex(envelope.destination.split(":")[1]):
                raise MessageRejected("the state_init does not match the address", seqno_used=False)
            code_boc, data_boc = envelope.init_code.to_boc(), envelope.init_data.to_boc()
            fee += self.fees.deploy
        if code_boc is None or data_boc is None:  # pragma: no cover - active rows have both
            raise ChainError(f"The local network lost the state of {account.address}.")
        code, data = Cell.one_from_boc(code_boc), Cell.one_from_boc(data_boc)
        kind = wallet_kind(code)
        if kind is None:
            raise MessageRejected("the account is not a standard wallet", seqno_used=False)
        if account.balance < fee:
            raise MessageRejected(
                "the wallet cannot pay for processing the message", seqno_used=False
            )
        try:
            wallet = read_wallet_data(kind, data)
            request = check_request(
                wallet, envelope.body, self._clock(), verify_signature=check_signature
            )
        except WalletRefusedError as refused:
            raise MessageRejected(
                refused.reason,
                seqno_used=refused.exit_code in _SEQNO_EXITS,
                exit_code=refused.exit_code,
            ) from refused
        accepted = replace(
            account,
            balance=Nanoton(account.balance - fee),
            status="active",
            code=code_boc,
            data=bytes(bump_seqno(kind, data).to_boc()),
        )
        if request.post_accept_exit is not None:
            return _Outcome(accepted, fee, [], request.post_accept_exit, None, False)
        return self._run_actions(account, accepted, fee, request.actions)

    def _run_actions(
        self,
        before: AccountState,
        accepted: AccountState,
        fee: int,
        actions: tuple[OutAction, ...],
    ) -> _Outcome:
        balance: int = accepted.balance
        sends: list[tuple[OutAction, int]] = []
        destroy = False
        for action in actions:
            forward = self.fees.forward
            if action.mode & _MODE_CARRY_ALL:
                cost, delivered = balance, balance - forward
            elif action.mode & _MODE_PAY_FEES_SEPARATELY:
                cost, delivered = action.value + forward, action.value
            else:
                cost, delivered = action.value, action.value - forward
            if cost > balance or delivered < 0:
                if action.mode & _MODE_IGNORE_ERRORS:
                    continue
                # A failed action phase rolls the whole state back (seqno too): only fees go.
                rolled_back = replace(before, balance=Nanoton(before.balance - fee))
                return _Outcome(rolled_back, fee, [], 0, False, True)
            balance -= cost
            fee += forward
            sends.append((action, delivered))
            destroy = destroy or bool(action.mode & _MODE_DESTROY_IF_EMPTY)
        account = replace(accepted, balance=Nanoton(balance))
        if destroy and balance == 0:
            account = AccountState(account.address, Nanoton(0), "nonexist")
        return _Outcome(account, fee, sends, _NO_ACTIONS_EXIT, True, False)

    def _record_external(
        self, ledger: LedgerWriter, outcome: _Outcome, envelope: ExternalEnvelope
    ) -> ChainTransaction:
        return self._new_tx(
            ledger,
            outcome.account,
            in_msg=InboundMessage(True, None, Nanoton(0), None, False, False),
            out_msgs=tuple(
                OutboundMessage(
                    action.destination, Nanoton(value), text_comment(action.body), action.bounce
                )
                for action, value in outcome.sends
            ),
            fees=outcome.fees,
            compute=(outcome.exit_code == 0, outcome.exit_code),
            action_success=outcome.action_success,
            aborted=outcome.aborted,
            normalized=envelope.normalized_hash,
        )

    def _drain(self, ledger: LedgerWriter, messages: Iterable[InternalMessage]) -> None:
        """Deliver ``messages`` and everything they cause, oldest first."""
        queue = deque(messages)
        delivered = 0
        while queue:
            delivered += 1
            if delivered > _MAX_MESSAGES_PER_SEND:
                raise ChainError("The local network stopped a runaway chain of messages.")
            queue.extend(self._deliver(ledger, queue.popleft())[1])

    def _deliver(
        self, ledger: LedgerWriter, message: InternalMessage
    ) -> tuple[ChainTransaction, tuple[InternalMessage, ...]]:
        """One internal message's transaction on its destination, and the messages it sends."""
        prior = ledger.account(message.destination)
        done = deliver(self._cocoon, prior, message, self.fees)
        tx = self._new_tx(
            ledger,
            done.account,
            in_msg=inbound(message),
            out_msgs=outbound(done.sent),
            fees=done.fees,
            compute=done.compute,
            action_success=done.action_success,
            aborted=done.aborted,
        )
        return tx, done.sent

    def _new_tx(
        self,
        ledger: LedgerWriter,
        account: AccountState,
        *,
        in_msg: InboundMessage,
        out_msgs: tuple[OutboundMessage, ...] = (),
        fees: int = 0,
        compute: tuple[bool | None, int | None],
        action_success: bool | None = True,
        aborted: bool = False,
        normalized: bytes | None = None,
    ) -> ChainTransaction:
        lt = ledger.next_lt()
        draft = ChainTransaction(
            account=account.address,
            hash=b"",
            lt=lt,
            utime=self._clock(),
            prev_lt=account.last_tx_lt,
            prev_hash=account.last_tx_hash,
            in_msg=in_msg,
            out_msgs=out_msgs,
            total_fees=Nanoton(fees),
            compute_success=compute[0],
            compute_exit_code=compute[1],
            action_success=action_success,
            aborted=aborted,
            in_msg_normalized_hash=normalized,
        )
        # Not a real cell hash: a digest of the transaction's content, unique per (account, lt).
        digest = hashlib.sha256(json.dumps(encode_transaction(draft), sort_keys=True).encode())
        tx = replace(draft, hash=digest.digest())
        ledger.add_transaction(tx)
        ledger.put_account(replace(account, last_tx_lt=lt, last_tx_hash=tx.hash))
        return tx


def _comment_body(comment: str | None) -> Cell | None:
    if comment is None:
        return None
    cell: Cell = Builder().store_uint(0, 32).store_snake_string(comment).end_cell()
    return cell
