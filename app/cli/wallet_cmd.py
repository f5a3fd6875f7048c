"""`cocoon-provider wallet`: create, import, address, balance, history, send (also offline), export.

Secrets come from stdin (``--password-stdin``, ``--mnemonic-stdin``: phrase on the first line,
password on the next) or from a hidden prompt; the recovery phrase of a new wallet is printed
once, to stdout, and never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from app.bootstrap import build_wallet_service, wallet_network
from app.cli.context import CliContext, CliUsageError
from app.cli.secrets import password, read_line, secret_prompt
from app.core.errors import UserFacingError
from app.core.money import format_ton, parse_ton
from app.core.settings import Settings
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion, display_address
from app.wallet.history import Direction, HistoryEntry
from app.wallet.offline_signing import sign_offline
from app.wallet.service import WalletService
from app.wallet.simulated_chain import SimulatedChain
from app.wallet.vault import DEFAULT_KDF, WalletVault, vault_path
from app.wallet.wallet_state import WithdrawalReceipt
from app.wallet.withdrawals import WithdrawalPlan, WithdrawalRequest

# Argon2id cost for new vaults (tests swap in the minimum; users always get the default).
VAULT_KDF = DEFAULT_KDF
_MNEMONIC_WARNING = (
    "WRITE THESE 24 WORDS DOWN ON PAPER, IN ORDER, AND KEEP THEM SECRET.\n"
    "They are the only way to recover this wallet. Anyone who sees them can take its money.\n"
    "They will not be shown again."
)

_PW_HELP = "read the password from stdin (the line after the phrase with --mnemonic-stdin)"

T = TypeVar("T")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("wallet", help="manage the TON wallet (create, balance, send…)")
    commands = parser.add_subparsers(dest="wallet_command", metavar="ACTION", required=True)

    def add(name: str, help_text: str, handler: Callable[..., int]) -> argparse.ArgumentParser:
        command: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
        command.add_argument("--wallet", metavar="ID", help="wallet id (default: the active one)")
        command.add_argument("--json", action="store_true", help="machine-readable output")
        command.set_defaults(handler=lambda args, ctx: handler(args, ctx))
        return command

    create = add("create", "create a new wallet and show its recovery phrase once", _create)
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    create.add_argument("--wallet-version", choices=("v5r1", "v4r2"), default=None)
    imp = add("import", "import a wallet from its 24-word recovery phrase", _import)
    imp.add_argument("--mnemonic-stdin", action="store_true", help="read the phrase from stdin")
    imp.add_argument("--password-stdin", action="store_true", help=_PW_HELP)
    imp.add_argument("--wallet-version", choices=("v5r1", "v4r2"), default=None)
    add("address", "show the wallet address", _address)
    add("balance", "show the balance (and the node wallet's)", _balance)
    history = add("history", "show recent transfers", _history)
    history.add_argument("--limit", type=int, default=20, help="how many transactions (1-256)")
    export = add("export", "export the whole history as CSV", _export)
    export.add_argument("path", type=Path, help="CSV file to write")
    faucet = add("faucet", "devnet only: add test TON to the wallet", _faucet)
    faucet.add_argument("--amount", default="10", help="TON to add (default 10)")
    send = add("send", "send TON (asks to confirm warnings unless --yes)", _send)
    send.add_argument("--to", required=True, metavar="ADDR", help="destination address")
    send.add_argument("--amount", metavar="TON", help="amount in TON, e.g. 1.5")
    send.add_argument("--max", action="store_true", help="send the whole balance (minus fees)")
    send.add_argument("--comment", default=None, help="text comment for the recipient")
    send.add_argument("--yes", action="store_true", help="confirm warnings without asking")
    send.add_argument("--password-stdin", action="store_true", help=_PW_HELP)
    send.add_argument("--offline", action="store_true", help="only sign; print the message")
    send.add_argument("--seqno", type=int, help="with --offline: the wallet's current seqno")
    send.add_argument("--valid-until", type=int, help="with --offline: expiry (Unix time)")
    send.add_argument(
        "--destination-state",
        choices=("uninit", "active"),
        help="with --offline: whether the destination account is active",
    )


# -- plumbing ---------------------------------------------------------------------------------


def _run(
    ctx: CliContext,
    args: argparse.Namespace,
    work: Callable[[WalletService], Awaitable[T]],
    *,
    start: bool = True,
) -> T:
    async def main() -> T:
        service = build_wallet_service(
            ctx.paths,
            ctx.network,
            ctx.settings.current.value.wallet,
            online=start,
            kdf=VAULT_KDF,
        )
        await service.start()
        try:
            if getattr(args, "wallet", None):
                service.select(args.wallet)
            return await work(service)
        finally:
            await service.aclose()

    return asyncio.run(main())


def _password(args: argparse.Namespace, *, new: bool) -> str:
    return password(args.password_stdin, new=new)


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> int:
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else text)
    return 0


def _remember_active(ctx: CliContext, wallet_id: str) -> None:
    def change(settings: Settings) -> Settings:
        wallet = dataclasses.replace(settings.wallet, active_wallet=wallet_id)
        return dataclasses.replace(settings, wallet=wallet)

    ctx.settings.update(change)


def _version(args: argparse.Namespace) -> WalletVersion | None:
    return WalletVersion(args.wallet_version) if args.wallet_version else None


# -- commands ---------------------------------------------------------------------------------


def _create(args: argparse.Namespace, ctx: CliContext) -> int:
    password = _password(args, new=True)
    summary, mnemonic = _run(
        ctx, args, lambda s: s.create(password, version=_version(args)), start=False
    )
    _remember_active(ctx, summary.wallet_id)
    words = mnemonic.words
    data = {"wallet_id": summary.wallet_id, "address": summary.address, "mnemonic": list(words)}
    numbered = "\n".join(f"{i:2d}. {word}" for i, word in enumerate(words, start=1))
    text = (
        f"Created wallet {summary.wallet_id}\nAddress: {summary.address}\n\n"
        f"{_MNEMONIC_WARNING}\n\n{numbered}"
    )
    if not args.json:
        print(_MNEMONIC_WARNING.splitlines()[0], file=sys.stderr)
    return _emit(args, data, text)


def _import(args: argparse.Namespace, ctx: CliContext) -> int:
    phrase = (
        read_line("recovery phrase")
        if args.mnemonic_stdin
        else secret_prompt("Recovery phrase (24 words)", option="--mnemonic-stdin")
    )
    password = _password(args, new=True)
    summary = _run(
        ctx, args, lambda s: s.import_(phrase, password, version=_version(args)), start=False
    )
    _remember_active(ctx, summary.wallet_id)
    data = {"wallet_id": summary.wallet_id, "address": summary.address}
    return _emit(args, data, f"Imported wallet {summary.wallet_id}\nAddress: {summary.address}")


def _address(args: argparse.Namespace, ctx: CliContext) -> int:
    summary = _run(ctx, args, _active, start=False)
    data = {
        "wallet_id": summary.wallet_id,
        "address": summary.address,
        "raw": summary.raw_address,
        "version": summary.version.value,
    }
    return _emit(args, data, summary.address)


async def _active(service: WalletService) -> Any:
    return service.active()


def _balance(args: argparse.Namespace, ctx: CliContext) -> int:
    async def work(service: WalletService) -> Any:
        service.active()
        return await service.refresh()

    state = _run(ctx, args, work)
    if state.offline:
        raise UserFacingError("The TON network cannot be reached; the balance is unknown.")
    if state.refresh_error:
        raise UserFacingError(state.refresh_error)
    node = state.node_wallet
    data: dict[str, Any] = {
        "address": state.active.address,
        "balance_nanoton": state.balance,
        "balance_ton": format_ton(state.balance or 0),
        "deployed": state.deployed,
        "node_wallet": None
        if node is None
        else {
            "address": node.address,
            "balance_ton": format_ton(node.balance),
            "ready": node.ready,
        },
        "pending_send": None
        if state.pending_send is None
        else dataclasses.asdict(state.pending_send),
    }
    lines = [f"{format_ton(state.balance or 0, trim=True, unit=True)}  ({state.active.address})"]
    if node is not None:
        lines.append(node.describe())
    if state.pending_send is not None:
        lines.append(f"A send to {state.pending_send.destination} is not confirmed yet.")
    return _emit(args, data, "\n".join(lines))


def _history(args: argparse.Namespace, ctx: CliContext) -> int:
    page = _run(ctx, args, lambda s: s.history(limit=args.limit))
    network = TonNetwork.for_setting(wallet_network(ctx.network))
    rows = [_entry_json(e, network) for e in page.entries]
    text = "\n".join(_entry_text(e, network) for e in page.entries) or "No transactions yet."
    return _emit(args, {"entries": rows}, text)


def _shown(raw: str | None, network: TonNetwork) -> str | None:
    return None if raw is None else display_address(raw, network)


def _entry_json(entry: HistoryEntry, network: TonNetwork) -> dict[str, Any]:
    return {
        "time": entry.time.isoformat(),
        "direction": entry.direction.value,
        "ok": entry.ok,
        "counterparty": _shown(entry.counterparty, network),
        "amount_ton": format_ton(entry.amount),
        "fee_ton": format_ton(entry.fee),
        "comment": entry.comment,
        "lt": entry.lt,
        "hash": entry.tx_hash.hex(),
    }


def _entry_text(entry: HistoryEntry, network: TonNetwork) -> str:
    sign = {Direction.INCOMING: "+", Direction.BOUNCED: "+", Direction.OUTGOING: "-"}
    amount = f"{sign.get(entry.direction, ' ')}{format_ton(entry.amount, trim=True)}"
    parts = [entry.time.strftime("%Y-%m-%d %H:%M"), f"{amount:>16} TON", entry.direction.value]
    if entry.counterparty:
        parts.append(_shown(entry.counterparty, network) or "")
    if entry.comment:
        parts.append(f"“{entry.comment}”")
    if not entry.ok:
        parts.append("(failed)")
    return "  ".join(parts)


def _export(args: argparse.Namespace, ctx: CliContext) -> int:
    count = _run(ctx, args, lambda s: s.export_csv(args.path.expanduser()))
    return _emit(
        args, {"path": str(args.path), "rows": count}, f"Wrote {count} rows to {args.path}"
    )


def _faucet(args: argparse.Namespace, ctx: CliContext) -> int:
    if ctx.network != "devnet":
        raise CliUsageError("The faucet exists only on the local devnet network.")
    amount = parse_ton(args.amount)

    async def work(service: WalletService) -> Any:
        chain = service.chain
        if not isinstance(chain, SimulatedChain):  # pragma: no cover - devnet always simulates
            raise CliUsageError("The faucet exists only on the local devnet network.")
        await chain.mint(service.active().raw_address, amount, comment="devnet faucet")
        return await service.refresh()

    state = _run(ctx, args, work)
    return _emit(
        args,
        {"balance_ton": format_ton(state.balance or 0)},
        f"Balance: {format_ton(state.balance or 0, trim=True, unit=True)}",
    )


def _send(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.max == (args.amount is not None):
        raise CliUsageError("Give either --amount or --max.")
    if args.offline:
        return _send_offline(args, ctx)
    if any(v is not None for v in (args.seqno, args.valid_until, args.destination_state)):
        raise CliUsageError("--seqno, --valid-until and --destination-state need --offline.")
    request = WithdrawalRequest(args.to, args.amount or "", send_all=args.max, comment=args.comment)
    password = _password(args, new=False)

    async def work(service: WalletService) -> WithdrawalReceipt:
        service.active()
        plan = await service.plan_withdrawal(request)
        _confirm(args, plan)
        await service.unlock(password)
        kinds = {warning.kind for warning in plan.warnings}
        return await service.withdraw(request, plan=plan, confirmed=kinds)

    receipt = _run(ctx, args, work)
    data = {
        "status": receipt.status.value,
        "to": receipt.destination,
        "amount_ton": format_ton(receipt.amount),
        "send_all": receipt.send_all,
        "fee_estimate_ton": format_ton(receipt.fee_estimate),
        "seqno": receipt.seqno,
        "valid_until": receipt.valid_until,
        "message_hash": receipt.message_hash.hex(),
        "normalized_hash": receipt.normalized_hash.hex(),
        "message": receipt.message,
    }
    text = (
        f"{receipt.status.value}: {format_ton(receipt.amount, trim=True, unit=True)} to "
        f"{receipt.destination} (fee about {format_ton(receipt.fee_estimate, trim=True)} TON)"
    )
    return _emit(args, data, text + (f"\n{receipt.message}" if receipt.message else ""))


def _confirm(args: argparse.Namespace, plan: WithdrawalPlan) -> None:
    if not plan.warnings or args.yes:
        return
    for warning in plan.warnings:
        print(f"Warning: {warning.message}", file=sys.stderr)
    if args.password_stdin or not sys.stdin.isatty():
        raise CliUsageError("This send has warnings; review them and add --yes to confirm.")
    if input("Send anyway? Type 'yes': ").strip().lower() != "yes":
        raise UserFacingError("Cancelled; nothing was sent.")


def _send_offline(args: argparse.Namespace, ctx: CliContext) -> int:
    missing = [
        name
        for name, value in (
            ("--seqno", args.seqno),
            ("--valid-until", args.valid_until),
            ("--destination-state", args.destination_state),
        )
        if value is None
    ]
    if missing:
        raise CliUsageError(f"Offline signing needs {', '.join(missing)}.")
    summary = _run(ctx, args, _active, start=False)
    vault = WalletVault.load(vault_path(ctx.paths.wallets_dir, summary.wallet_id))
    keys = vault.keypair(vault.unlock(_password(args, new=False)))
    contract = WalletContract(
        summary.version, TonNetwork.for_setting(wallet_network(ctx.network)), keys.public_key
    )
    signed = sign_offline(
        contract,
        keys,
        destination=args.to,
        amount=None if args.max else args.amount,
        seqno=args.seqno,
        valid_until=args.valid_until,
        destination_state=args.destination_state,
        comment=args.comment,
    )
    if signed.destination.warnings and not args.yes:
        for warning in signed.destination.warnings:
            print(f"Warning: {warning.value}", file=sys.stderr)
        raise CliUsageError("This destination has warnings; add --yes to sign anyway.")
    data = signed.to_json()
    return _emit(args, data, data["boc"])
