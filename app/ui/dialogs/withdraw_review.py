"""The sentences of a withdrawal's review step and of its result, from the typed plan/receipt."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape

from app.core.money import format_ton
from app.wallet.pending import SendStatus
from app.wallet.wallet_state import WithdrawalReceipt
from app.wallet.withdrawals import WithdrawalPlan


def ton(amount: int) -> str:
    return format_ton(amount, trim=True, unit=True)


def fee_share(plan: WithdrawalPlan) -> str:
    """The fee as a percentage of the amount (small payouts eaten by fees are a known pain)."""
    if plan.amount <= 0:
        return "—"
    hundredths = (plan.fee_estimate * 10_000 + plan.amount - 1) // plan.amount  # rounded up
    return f"{hundredths // 100}.{hundredths % 100:02d} %"


def bounce_line(plan: WithdrawalPlan) -> str:
    """Whether the transfer bounces and why, in the terms of the address the user gave."""
    if plan.bounce:
        return (
            "Bounce: yes, because the address is bounceable and the account is active. If the "
            "recipient's contract refuses the transfer, the money comes back minus fees."
        )
    if plan.destination.bounceable is False:
        return "Bounce: no, because this is a non-bounceable address (a wallet's UQ…/0Q… form)."
    if not plan.destination_active:
        return (
            "Bounce: no, because the destination account is not active yet: a bouncing "
            "transfer would come straight back instead of arriving."
        )
    return "Bounce: no."


def review_lines(plan: WithdrawalPlan, show: Callable[[str], str]) -> list[str]:
    """The review step as HTML lines: what leaves, what arrives, the fee, bounce, comment."""
    destination = f"<b>{escape(plan.destination_text)}</b>"
    lines: list[str] = []
    if plan.send_all:
        lines.append(f"You send your <b>whole balance</b> ({ton(plan.balance)}) to {destination}.")
        lines.append(f"Network fee ≈ {ton(plan.fee_estimate)}, taken from the balance.")
        lines.append(f"The recipient gets about <b>{ton(plan.amount)}</b>; your wallet is emptied.")
    else:
        lines.append(f"You send <b>{ton(plan.amount)}</b> to {destination}.")
        lines.append(
            f"Network fee ≈ {ton(plan.fee_estimate)} ({fee_share(plan)} of the amount), paid on "
            f"top: about {ton(plan.amount + plan.fee_estimate)} leaves your wallet."
        )
        lines.append(f"The recipient gets <b>{ton(plan.amount)}</b>.")
    if plan.destination_text != show(plan.destination.raw):
        lines.append(f"Same account as {escape(show(plan.destination.raw))}.")
    lines.append(escape(bounce_line(plan)))
    if plan.comment:
        lines.append(f"Comment: “{escape(plan.comment)}”")
    else:
        lines.append("No comment. Exchanges usually need one (a memo) to credit a deposit.")
    if not plan.deployed:
        lines.append("This first send also deploys your wallet contract (included in the fee).")
    return lines


def receipt_text(receipt: WithdrawalReceipt) -> tuple[str, str]:
    """A headline and a detail sentence for where a send stands."""
    amount = "your whole balance" if receipt.send_all else ton(receipt.amount)
    expires = datetime.fromtimestamp(receipt.valid_until).strftime("%H:%M:%S")
    match receipt.status:
        case SendStatus.SENT:
            return "Sent", f"{amount} went to {receipt.destination}."
        case SendStatus.PENDING:
            return (
                "Waiting for confirmation…",
                f"The transfer of {amount} reached the network and is being confirmed "
                "(usually a few seconds). You can close this window.",
            )
        case SendStatus.UNKNOWN:
            return (
                "Not confirmed yet",
                "The network did not confirm receiving the transfer. The app re-sends the "
                f"same signed message until {expires}; it can never be paid twice.",
            )
        case SendStatus.FAILED:
            return (
                "Failed",
                "The transaction ran but sent nothing; the network fee was charged. "
                f"{receipt.message}".strip(),
            )
        case SendStatus.NOT_SENT:
            return "Not sent", f"Nothing left your wallet. {receipt.message}".strip()
