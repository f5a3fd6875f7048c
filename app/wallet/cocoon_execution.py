"""The COCOON contract models' entry point: one internal message on a worker or proxy contract.

:func:`execute` runs the message the way the TVM would: no gas under 40 000 nanotons (compute
phase skipped), bounced, empty and ``do_not_process`` bodies accepted unchanged, otherwise the
contract's model (``cocoon_worker_model``, ``cocoon_proxy_model``) as the compute phase and its
:class:`~app.wallet.cocoon_vm.Decision` as the action phase. A failed compute phase rolls the
state back and bounces what is left of a bounceable message; a failed action phase rolls it back
and keeps the value. What the contracts check, in which order, and their exit codes:
``docs/contracts.md``.
"""

# pytoniq-core ships py.typed but leaves most methods unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from pytoniq_core.boc.cell import Cell

from app.core.money import Nanoton
from app.wallet.chain import AccountState
from app.wallet.cocoon_contracts import OP_DO_NOT_PROCESS, CocoonContractError, CocoonRootParams
from app.wallet.cocoon_proxy_model import run_proxy
from app.wallet.cocoon_vm import (
    MODE_CARRY_ALL,
    MODE_PAY_FEES_SEPARATELY,
    UNDERFLOWS,
    CocoonExit,
    Context,
    Decision,
    InternalMessage,
    Thrown,
    bounce_body,
)
from app.wallet.cocoon_worker_model import run_worker

if TYPE_CHECKING:
    from app.wallet.simulated_chain import FeeModel

# The message type is the models' (cocoon_vm); it is part of this entry point's interface.
__all__ = ["CocoonCodes", "ContractKind", "Execution", "InternalMessage", "execute"]

# Mainnet config 21 (basechain): the first 100 gas cost a flat 40 000 nanotons. An internal message
# worth less buys no gas, so its compute phase is skipped (the worker's 1-nanoton register notice).
_FLAT_GAS_PRICE: Final = 40_000


class ContractKind(enum.Enum):
    """Which COCOON contract a code hash is."""

    WORKER = "worker"
    PROXY = "proxy"


@dataclass(frozen=True, slots=True)
class Execution:
    """What one internal message did to a COCOON contract: its new state and what it sent."""

    account: AccountState
    fees: int
    exit_code: int | None  # None: the compute phase was skipped
    action_success: bool | None
    sent: tuple[InternalMessage, ...]

    @property
    def aborted(self) -> bool:
        return self.exit_code != 0 or self.action_success is False


class CocoonCodes:
    """Which code hashes are COCOON worker/proxy contracts (told by ``register``)."""

    def __init__(self) -> None:
        self._kinds: dict[bytes, ContractKind] = {}

    def register(self, root: CocoonRootParams) -> None:
        for boc, kind in (
            (root.worker_sc_code, ContractKind.WORKER),
            (root.proxy_sc_code, ContractKind.PROXY),
        ):
            if boc is None:
                raise CocoonContractError(f"The root configuration carries no {kind.value} code.")
            self._kinds[bytes(Cell.one_from_boc(boc).hash)] = kind

    def kind_of(self, account: AccountState) -> ContractKind | None:
        if account.status != "active" or account.code is None or not self._kinds:
            return None
        return self._kinds.get(bytes(Cell.one_from_boc(account.code).hash))


def execute(
    kind: ContractKind,
    *,
    prior: AccountState,
    account: AccountState,
    message: InternalMessage,
    charged: int,
    fees: FeeModel,
) -> Execution:
    """Run ``message`` on ``account`` (already deployed if the message deployed it).

    ``prior`` is the state to roll back to on failure; ``charged`` was already taken from the
    value (the deploy fee)."""
    original = account.balance + message.value - charged
    if message.value < _FLAT_GAS_PRICE:  # buys no gas: the compute phase is skipped (no_gas)
        return _fail(prior, message, original, charged, None, None, fees)
    body = message.body
    if (
        message.bounced
        or body is None
        or not (body.bits or body.refs)
        or _op(body) == OP_DO_NOT_PROCESS
    ):
        credited = replace(account, balance=Nanoton(original))
        return Execution(credited, charged, 0, True, ())
    if account.data is None:  # pragma: no cover - active accounts always have data
        raise CocoonContractError(f"{account.address} has no data.")
    compute = min(
        fees.worker_compute if kind is ContractKind.WORKER else fees.proxy_compute, original
    )
    context = Context(
        account.address, account.balance - charged, message, Cell.one_from_boc(account.data)
    )
    try:
        decision = run_worker(context) if kind is ContractKind.WORKER else run_proxy(context)
    except Thrown as thrown:
        return _fail(
            prior, message, original - compute, charged + compute, thrown.exit_code, None, fees
        )
    except UNDERFLOWS:  # where TVM would stop with a cell underflow
        return _fail(
            prior,
            message,
            original - compute,
            charged + compute,
            CocoonExit.CELL_UNDERFLOW,
            None,
            fees,
        )
    return _actions(prior, account, message, decision, original - compute, charged + compute, fees)


def _actions(
    prior: AccountState,
    account: AccountState,
    message: InternalMessage,
    decision: Decision,
    balance: int,
    spent: int,
    fees: FeeModel,
) -> Execution:
    # A failed action phase (37: not enough funds, 34/36: a bad destination) undoes the compute
    # phase's effects as well, and does not bounce (that would take send mode +16).
    start, start_spent = balance, spent
    if decision.reserve > balance:
        return _fail(prior, message, start, start_spent, 0, False, fees)
    balance -= decision.reserve
    sent: list[InternalMessage] = []
    for send in decision.sends:
        if send.mode & MODE_CARRY_ALL:
            cost, delivered = balance, balance - fees.forward
        elif send.mode & MODE_PAY_FEES_SEPARATELY:
            cost, delivered = send.value + fees.forward, send.value
        else:
            cost, delivered = send.value, send.value - fees.forward
        if send.destination is None or cost > balance or delivered < 0:
            return _fail(prior, message, start, start_spent, 0, False, fees)
        balance -= cost
        spent += fees.forward
        sent.append(
            InternalMessage(account.address, send.destination, delivered, send.bounce, send.body)
        )
    data = account.data if decision.data is None else bytes(decision.data.to_boc())
    done = replace(account, balance=Nanoton(balance + decision.reserve), data=data)
    return Execution(done, spent, 0, True, tuple(sent))


def _fail(
    prior: AccountState,
    message: InternalMessage,
    balance: int,
    spent: int,
    exit_code: int | None,
    action_success: bool | None,
    fees: FeeModel,
) -> Execution:
    """Roll the state back to ``prior``; after a failed compute phase, bounce what is left of the
    value when bounceable (a failed action phase keeps it)."""
    left = message.value - spent
    sent: tuple[InternalMessage, ...] = ()
    if action_success is None and message.bounce and left > fees.bounce:
        refund = left - fees.bounce
        sent = (
            InternalMessage(
                message.destination,
                message.source,
                refund,
                False,
                bounce_body(message.body),
                bounced=True,
            ),
        )
        balance -= left
        spent += fees.bounce
    status = "uninit" if prior.status == "nonexist" and balance > 0 else prior.status
    rolled = replace(prior, balance=Nanoton(balance), status=status)
    return Execution(rolled, spent, exit_code, action_success, sent)


def _op(body: Cell) -> int | None:
    cs = body.begin_parse()
    return int(cs.preload_uint(32)) if cs.remaining_bits >= 32 else None
