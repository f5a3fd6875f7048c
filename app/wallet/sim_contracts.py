"""What an internal message does to the contract it reaches on the simulated chain.

A StateInit deploys its destination when its hash is the address (:func:`deploy_from`). A COCOON
worker or proxy contract whose code was registered runs its Python model (``cocoon_execution``);
any other active account, or a non-bounceable message, is credited; a bounceable message to an
account without code comes back minus the bounce fee. :func:`deliver` says what happened as a
:class:`Delivery`, which ``SimulatedChain`` records as the transaction. The faucet's own deploys
(the devnet's proxy contract) go through :func:`deployable` and :func:`contract_deployed`.
"""

# pytoniq-core ships py.typed but leaves most methods unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.account import StateInit

from app.core.money import Nanoton
from app.wallet.chain import AccountState, ChainError, InboundMessage, OutboundMessage, text_comment
from app.wallet.cocoon_contracts import state_init_address
from app.wallet.cocoon_execution import CocoonCodes, InternalMessage, execute
from app.wallet.cocoon_vm import bounce_body

if TYPE_CHECKING:
    from app.wallet.simulated_chain import FeeModel


@dataclass(frozen=True, slots=True)
class Delivery:
    """One internal message's transaction on its destination, before the ledger records it."""

    account: AccountState
    fees: int
    sent: tuple[InternalMessage, ...] = ()
    compute: tuple[bool | None, int | None] = (True, 0)
    action_success: bool | None = True
    aborted: bool = False


def deliver(
    codes: CocoonCodes, prior: AccountState, message: InternalMessage, fees: FeeModel
) -> Delivery:
    """What ``message`` does to ``prior``, its destination's state, and the messages it sends."""
    target, charged = deploy_from(prior, message, fees)
    kind = codes.kind_of(target)
    if kind is not None:
        run = execute(
            kind, prior=prior, account=target, message=message, charged=charged, fees=fees
        )
        compute = (run.exit_code == 0, run.exit_code)
        return Delivery(run.account, run.fees, run.sent, compute, run.action_success, run.aborted)
    if target.status == "active" or not message.bounce:
        status = "uninit" if target.status == "nonexist" else target.status
        balance = Nanoton(target.balance + message.value - charged)
        return Delivery(replace(target, balance=balance, status=status), charged)
    # Bounceable message to an account without code: it comes back minus the bounce fee.
    refund = message.value - fees.bounce
    sent: tuple[InternalMessage, ...] = ()
    if refund > 0:
        body = bounce_body(message.body)
        sent = (InternalMessage(target.address, message.source, refund, False, body, True),)
    spent = message.value - refund if sent else 0
    return Delivery(target, spent, sent, (None, None), None, True)


def deploy_from(
    account: AccountState, message: InternalMessage, fees: FeeModel
) -> tuple[AccountState, int]:
    """``account`` deployed by the message's StateInit when it may be, and the fee for it."""
    init = message.state_init
    if init is None or account.status in ("active", "frozen"):
        return account, 0
    if init.code is None or init.data is None:
        return account, 0
    # A StateInit for another address is ignored, as the network does.
    if bytes(init.serialize().hash).hex() != account.address.partition(":")[2]:
        return account, 0
    if account.balance + message.value < fees.deploy:
        return account, 0
    code, data = bytes(init.code.to_boc()), bytes(init.data.to_boc())
    return replace(account, status="active", code=code, data=data), fees.deploy


def deployable(state_init: StateInit, balance: int) -> tuple[str, Cell, Cell]:
    """The address, code and data of a contract the faucet may deploy with ``balance``."""
    if type(balance) is not int or balance < 0:
        raise ValueError("a contract's balance is a non-negative number of nanotons")
    code, data = state_init.code, state_init.data
    if code is None or data is None:
        raise ValueError("a contract's StateInit needs both code and data")
    return state_init_address(state_init), code, data


def contract_deployed(
    account: AccountState, code: Cell, data: Cell, balance: int
) -> AccountState | None:
    """``account`` running ``code`` with ``data`` and ``balance`` more nanotons; None when it
    already runs that code (a deployed contract is left as it is)."""
    if account.status == "active" and account.code is not None:
        # The address is the StateInit's hash, so only a damaged file gets here.
        if Cell.one_from_boc(account.code).hash != code.hash:  # pragma: no cover
            raise ChainError(f"{account.address} runs other code.")
        return None
    if account.status == "frozen":
        raise ChainError(f"{account.address} is frozen.")
    return replace(
        account,
        balance=Nanoton(account.balance + balance),
        status="active",
        code=bytes(code.to_boc()),
        data=bytes(data.to_boc()),
    )


def inbound(message: InternalMessage) -> InboundMessage:
    """How a transaction records the internal message it processed."""
    return InboundMessage(
        False,
        message.source,
        Nanoton(message.value),
        text_comment(message.body),
        message.bounced,
        message.bounce,
    )


def outbound(sent: tuple[InternalMessage, ...]) -> tuple[OutboundMessage, ...]:
    """How a transaction records the internal messages it sent."""
    return tuple(
        OutboundMessage(m.destination, Nanoton(m.value), text_comment(m.body), m.bounce)
        for m in sent
    )
