""" "Why am I not earning?": the path from a running engine to TON in the wallet, one typed stage
per step, each with a plain reason and the fix. ``doctor`` prints it; the dashboard shows it.

Pure: :func:`earning_pipeline` reads snapshots the services already publish.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from app.core.money import format_ton
from app.network.cashout import CashoutStatus
from app.network.earning import EarningStatus
from app.network.payment_store import PayoutState, ProxyAccount
from app.network.root_config import RootConfig
from app.wallet.node_wallet import NodeWalletStatus


class StageState(enum.StrEnum):
    OK = "ok"
    BLOCKED = "blocked"  # this stage stops earning; fix it first
    WAITING = "waiting"  # nothing wrong yet, it just has not happened
    SKIPPED = "skipped"  # does not apply here


@dataclass(frozen=True, slots=True)
class Stage:
    key: str
    title: str
    state: StageState
    reason: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Pipeline:
    stages: tuple[Stage, ...]

    @property
    def first_problem(self) -> Stage | None:
        """The earliest stage that blocks or has not happened yet."""
        return next((s for s in self.stages if s.state in _OPEN), None)

    def to_json(self) -> list[dict[str, str]]:
        return [
            {
                "key": s.key,
                "title": s.title,
                "state": s.state.value,
                "reason": s.reason,
                "fix": s.fix,
            }
            for s in self.stages
        ]

    def render(self) -> str:
        marks = {
            StageState.OK: "✓",
            StageState.BLOCKED: "✗",
            StageState.WAITING: "…",
            StageState.SKIPPED: "-",
        }
        lines = []
        for s in self.stages:
            lines.append(f"  {marks[s.state]} {s.title}: {s.reason}")
            if s.fix and s.state in _OPEN:
                lines.append(f"      → {s.fix}")
        return "\n".join(lines)


_OPEN = (StageState.BLOCKED, StageState.WAITING)


@dataclass(frozen=True, slots=True)
class PipelineInputs:
    """Everything the stages look at, as the services last published it."""

    earning: EarningStatus
    root: RootConfig | None
    owner_address: str
    node_wallet: NodeWalletStatus | None
    accounts: Iterable[ProxyAccount]
    cashout: CashoutStatus
    is_test: bool = True


def earning_pipeline(inputs: PipelineInputs) -> Pipeline:
    accounts = list(inputs.accounts)
    return Pipeline(
        (
            _engine(inputs.earning),
            _model(inputs.earning, inputs.root, inputs.is_test),
            _owner(inputs.owner_address),
            _gas(inputs.node_wallet),
            _proxy(inputs.earning),
            _enabled(inputs.earning),
            _requests(inputs.earning),
            _vouchers(accounts),
            _cash_out(inputs.cashout, accounts),
        )
    )


def _engine(earning: EarningStatus) -> Stage:
    title = "Engine running"
    if earning.phase in ("earning", "paused"):
        return Stage("engine", title, StageState.OK, f"{earning.model} on {earning.device}")
    if earning.phase == "starting":
        return Stage("engine", title, StageState.WAITING, earning.message)
    if earning.phase == "failed":
        return Stage("engine", title, StageState.BLOCKED, earning.message, "Fix that, then Start.")
    return Stage("engine", title, StageState.BLOCKED, "Not started.", "Press Start earning.")


def _model(earning: EarningStatus, root: RootConfig | None, is_test: bool) -> Stage:
    title = "Model allowed by the network"
    if not earning.model:
        return Stage("model", title, StageState.WAITING, "No model chosen yet.")
    if is_test or root is None or root.is_test:
        return Stage("model", title, StageState.OK, "Test network: every model is admitted.")
    if root.accepts_model(earning.model):
        return Stage("model", title, StageState.OK, f"{earning.model} is registered.")
    return Stage(
        "model",
        title,
        StageState.BLOCKED,
        f"The root contract does not list {earning.model}.",
        "Choose a model the network lists (Settings → Engine → Model).",
    )


def _owner(owner: str) -> Stage:
    title = "Owner address set"
    if owner:
        return Stage("owner", title, StageState.OK, f"Earnings go to {owner}.")
    return Stage(
        "owner",
        title,
        StageState.BLOCKED,
        "No wallet receives your earnings.",
        "Create or import a wallet, or set Settings → Worker → Owner address.",
    )


def _gas(node: NodeWalletStatus | None) -> Stage:
    title = "Node wallet has gas"
    if node is None:
        return Stage(
            "gas",
            title,
            StageState.BLOCKED,
            "There is no node wallet to pay cash-out fees from.",
            "Wallet → Create node wallet (the local network funds it).",
        )
    if node.ready:
        return Stage("gas", title, StageState.OK, node.describe())
    return Stage("gas", title, StageState.BLOCKED, node.describe(), "Wallet → Top up node wallet.")


def _proxy(earning: EarningStatus) -> Stage:
    title = "Connected to a proxy"
    worker = earning.worker
    if worker is None:
        return Stage("proxy", title, StageState.WAITING, "The worker is not running.")
    if worker.connected_proxies:
        return Stage("proxy", title, StageState.OK, f"{worker.connected_proxies} connected.")
    reason = worker.last_error or "Connecting…"
    return Stage("proxy", title, StageState.WAITING, reason, "Check the proxy address and network.")


def _enabled(earning: EarningStatus) -> Stage:
    title = "Taking requests"
    worker = earning.worker
    if worker is None:
        return Stage("enabled", title, StageState.WAITING, "The worker is not running.")
    held = [p.hold_reason for p in worker.proxies if p.hold_reason]
    if worker.enabled and held:
        return Stage("enabled", title, StageState.BLOCKED, held[0], "Cash out, or raise the limit.")
    if worker.enabled:
        return Stage("enabled", title, StageState.OK, "Proxies may route requests here.")
    by = ", ".join(worker.disabled_by) or "a pause"
    return Stage(
        "enabled", title, StageState.BLOCKED, f"Paused by {by}.", "See the GPU panel and schedule."
    )


def _requests(earning: EarningStatus) -> Stage:
    title = "Requests arriving"
    serving = earning.serving
    if serving is None:
        return Stage("requests", title, StageState.WAITING, "Not serving yet.")
    if serving.served or serving.failed:
        return Stage(
            "requests", title, StageState.OK, f"{serving.served} served, {serving.failed} failed."
        )
    return Stage(
        "requests",
        title,
        StageState.WAITING,
        "No request yet: proxies route by model, price and load.",
        "Wait, or lower your price coefficient.",
    )


def _vouchers(accounts: list[ProxyAccount]) -> Stage:
    title = "Vouchers received"
    held = [a for a in accounts if a.voucher_tokens > 0]
    if held:
        owed = sum(a.cashable_nanoton for a in held)
        return Stage(
            "vouchers",
            title,
            StageState.OK,
            f"{len(held)} proxy voucher(s); {format_ton(owed, trim=True, unit=True)} cashable.",
        )
    notes = [a.note for a in accounts if a.note]
    if notes:
        return Stage("vouchers", title, StageState.BLOCKED, notes[0])
    return Stage(
        "vouchers",
        title,
        StageState.WAITING,
        "Proxies sign vouchers once they anchor their tallies on-chain (every 30–60 s).",
    )


def _cash_out(status: CashoutStatus, accounts: list[ProxyAccount]) -> Stage:
    title = "Last cash-out"
    last = status.last
    if last is not None and last.state is PayoutState.PAID and last.kind.value == "payout":
        paid = format_ton(last.amount_nanoton, trim=True, unit=True)
        return Stage("cashout", title, StageState.OK, f"#{last.id} paid {paid}.")
    if status.reason:
        return Stage("cashout", title, StageState.BLOCKED, status.reason)
    if not status.ready:
        return Stage(
            "cashout",
            title,
            StageState.BLOCKED,
            "The node wallet is locked, so vouchers wait.",
            "Unlock the wallet (headless: --password-stdin or COCOON_PROVIDER_PASSWORD).",
        )
    if last is not None and last.state.open:
        return Stage("cashout", title, StageState.WAITING, f"#{last.id} is on its way.")
    owed = sum(a.cashable_nanoton for a in accounts)
    return Stage(
        "cashout",
        title,
        StageState.WAITING,
        f"None yet; {format_ton(owed, trim=True, unit=True)} cashable. The policy cashes out "
        "from the threshold in Settings → Payouts.",
    )
