"""``cocoon-provider earnings``: what was earned, vouchered and paid (``--json``, ``--csv``), and
``earnings cashout``: send held vouchers to the worker contracts now."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from app.bootstrap import (
    build_cashout,
    build_payment_book,
    build_wallet_service,
    network_root,
    wallet_network,
)
from app.cli import wallet_cmd
from app.cli.context import CliContext, CliUsageError
from app.cli.secrets import has_terminal, password
from app.core.money import format_ton
from app.core.settings import PayoutSettings
from app.network.cashout import CashoutError
from app.network.earnings_ledger import Ledger, read_ledger
from app.network.payment_store import PaymentStore, Payout, PayoutState


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "earnings",
        help="what you earned, what vouchers cover and what was paid; cash out",
        description="The earnings ledger of this network: every billed job, the vouchers that "
        "cover them and the payouts that paid them into the owner's wallet.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="write one row per job and payout")
    parser.set_defaults(handler=show)
    actions = parser.add_subparsers(dest="earnings_action", metavar="ACTION")
    cashout = actions.add_parser(
        "cashout", help="send the held vouchers to the worker contracts now (node wallet pays gas)"
    )
    cashout.add_argument("--proxy", metavar="ADDR", help="only this proxy (contract address)")
    cashout.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    cashout.add_argument(
        "--password-stdin", action="store_true", help="read the wallet password from stdin"
    )
    cashout.add_argument("--json", action="store_true", help="print one JSON document")
    cashout.set_defaults(handler=cash_out)


def show(args: argparse.Namespace, ctx: CliContext) -> int:
    ledger = asyncio.run(_ledger(ctx))
    if args.csv is not None:
        args.csv.write_text(ledger.to_csv(), encoding="utf-8")
    if args.json:
        print(json.dumps(ledger.to_json(), indent=2))
    else:
        print(render(ledger, ctx.network))
        if args.csv is not None:
            print(f"Wrote {len(ledger.jobs)} jobs and {len(ledger.payouts)} payouts to {args.csv}")
    return 0


async def _ledger(ctx: CliContext) -> Ledger:
    store = PaymentStore(ctx.paths.payments_db(wallet_network(ctx.network)))
    await store.start()
    try:
        return await read_ledger(store)
    finally:
        await store.aclose()


def render(ledger: Ledger, network: str) -> str:
    t = ledger.totals

    def ton(value: int) -> str:
        return format_ton(value, trim=True, unit=True)

    lines = [
        f"Earnings on {network} ({len(ledger.jobs)} billed jobs)",
        f"  earned     {ton(t.earned_nanoton)}",
        f"  vouchered  {ton(t.vouchered_nanoton)}  (covered by signed vouchers: can be cashed out)",
        f"  paid       {ton(t.paid_nanoton)}  (in the owner's wallet; network fees "
        f"{ton(t.fees_nanoton)})",
        f"  unpaid     {ton(t.unpaid_nanoton)}",
    ]
    for a in ledger.accounts:
        lines.append(
            f"Proxy {a.proxy_sc}: voucher {a.voucher_tokens} tokens, paid {a.paid_tokens}, "
            f"owes {ton(a.unpaid_nanoton)}" + (f" — {a.note}" if a.note else "")
        )
    for p in ledger.payouts:
        detail = p.error if p.state is not PayoutState.PAID else f"tx {p.tx_hash.hex()[:16]}…"
        lines.append(
            f"Payout #{p.id} {p.kind.value} {p.state.value}: {ton(p.amount_nanoton)}, "
            f"fee {ton(p.fee_nanoton)} — {detail}"
        )
    if not ledger.accounts:
        lines.append("No proxy has billed anything yet: press Start earning (or run --headless).")
    return "\n".join(lines)


def cash_out(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings.current.value
    if not args.yes and not has_terminal():
        raise CliUsageError(
            "There is no terminal to confirm the cash-out at.", hint="Pass --yes to confirm."
        )
    secret = password(args.password_stdin, new=False, use_env=True)
    payouts = asyncio.run(_cash_out(ctx, args, secret, settings.payouts))
    rows = [
        {
            "id": p.id,
            "kind": p.kind.value,
            "state": p.state.value,
            "amount_nanoton": p.amount_nanoton,
            "fee_nanoton": p.fee_nanoton,
            "tx_hash": p.tx_hash.hex(),
            "error": p.error,
        }
        for p in payouts
    ]
    if args.json:
        print(json.dumps({"payouts": rows}, indent=2))
    for p in payouts if not args.json else ():
        amount = format_ton(p.amount_nanoton, trim=True, unit=True)
        print(f"Payout #{p.id} ({p.kind.value}): {p.state.value} {amount} {p.error}".rstrip())
    failed = [p for p in payouts if p.state in (PayoutState.FAILED, PayoutState.NOT_SENT)]
    return 1 if failed else 0


async def _cash_out(
    ctx: CliContext, args: argparse.Namespace, secret: str, policy: PayoutSettings
) -> list[Payout]:
    settings = ctx.settings.current.value
    wallet = build_wallet_service(ctx.paths, ctx.network, settings.wallet, kdf=wallet_cmd.VAULT_KDF)
    book = build_payment_book(ctx.paths, ctx.network)
    root = network_root(ctx.network, settings)
    cashout = build_cashout(
        book, wallet, ctx.paths, ctx.network, root=lambda: root, policy=lambda: policy
    )
    await wallet.start()
    await book.start()
    try:
        await wallet.unlock_node_wallet(secret)
        owed = sum(a.cashable_nanoton for a in book.accounts())
        if not args.yes:
            question = f"Cash out {format_ton(owed, trim=True, unit=True)}? [y/N] "
            answer = await asyncio.to_thread(input, question)
            if answer.strip().lower() not in {"y", "yes"}:
                raise CliUsageError("Cancelled; nothing was sent.")
        try:
            return await cashout.cash_out(args.proxy)
        except CashoutError as exc:
            raise CliUsageError(str(exc)) from exc
    finally:
        await book.aclose()
        await wallet.aclose()
