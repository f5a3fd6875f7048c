"""The "why am I not earning" pipeline: each stage's state, reason and fix from typed snapshots."""

from __future__ import annotations

import dataclasses

from app.core.money import Nanoton
from app.network.cashout import CashoutStatus
from app.network.earning import EarningStatus
from app.network.payment_store import Payout, PayoutKind, PayoutState, ProxyAccount
from app.network.pipeline import PipelineInputs, StageState, earning_pipeline
from app.network.proxy_session import SessionState
from app.network.request_server import ServingStatus
from app.network.worker import WorkerStatus
from app.wallet.node_wallet import NodeWalletStatus

ACCOUNT = ProxyAccount(
    worker_sc="0:" + "11" * 32,
    proxy_sc="0:" + "22" * 32,
    proxy_public_key=b"k" * 32,
    owner="0:" + "33" * 32,
    fee_per_token=80,
    params_version=1,
    voucher=b"v",
    voucher_tokens=1000,
    max_tokens=1200,
)


def inputs(**changes: object) -> PipelineInputs:
    base: dict[str, object] = {
        "earning": EarningStatus(
            phase="earning",
            model="Qwen/Qwen3-8B",
            device="GPU 0",
            worker=WorkerStatus(running=True, connected_proxies=1),
            serving=ServingStatus(served=3),
        ),
        "root": None,
        "owner_address": "0QDLYGhRHNqXquKXJazsjMBUUhXtmZ_Nom43-_sztpg80Q6E",
        "node_wallet": NodeWalletStatus("0Q…", Nanoton(3_000_000_000)),
        "accounts": [ACCOUNT],
        "cashout": CashoutStatus(ready=True),
    }
    base.update(changes)
    return PipelineInputs(**base)  # type: ignore[arg-type]


def states(pipeline_inputs: PipelineInputs) -> dict[str, StageState]:
    return {s.key: s.state for s in earning_pipeline(pipeline_inputs).stages}


def test_a_healthy_worker_waits_only_for_its_first_cash_out() -> None:
    pipeline = earning_pipeline(inputs())
    keys = [
        "engine",
        "model",
        "owner",
        "gas",
        "proxy",
        "enabled",
        "requests",
        "vouchers",
        "cashout",
    ]
    assert [s.key for s in pipeline.stages] == keys
    assert pipeline.first_problem is not None
    assert pipeline.first_problem.key == "cashout"
    assert "0.00008 TON cashable" in pipeline.first_problem.reason
    assert "✓ Vouchers received" in pipeline.render()


def test_each_blocked_stage_says_why_and_how_to_fix_it() -> None:
    stopped = earning_pipeline(inputs(earning=EarningStatus(), owner_address="", node_wallet=None))
    by_key = {s.key: s for s in stopped.stages}
    assert by_key["engine"].fix == "Press Start earning."
    assert by_key["owner"].state is StageState.BLOCKED
    assert "Owner address" in by_key["owner"].fix
    assert by_key["gas"].state is StageState.BLOCKED
    assert stopped.first_problem is not None
    assert stopped.first_problem.key == "engine"
    poor = NodeWalletStatus("0Q…", Nanoton(1))
    assert states(inputs(node_wallet=poor))["gas"] is StageState.BLOCKED


def test_a_held_proxy_a_note_and_a_paid_cash_out() -> None:
    held = WorkerStatus(
        running=True,
        connected_proxies=1,
        proxies=(SessionState("127.0.0.1:1", phase="ready", hold_reason="owes too much"),),
    )
    earning = EarningStatus(phase="earning", model="m", device="d", worker=held)
    assert states(inputs(earning=earning))["enabled"] is StageState.BLOCKED
    noted = dataclasses.replace(ACCOUNT, voucher_tokens=0, note="It lost its records.")
    vouchers = earning_pipeline(inputs(accounts=[noted])).stages[7]
    assert (vouchers.state, vouchers.reason) == (StageState.BLOCKED, "It lost its records.")
    payout = Payout(
        worker_sc=ACCOUNT.worker_sc,
        proxy_sc=ACCOUNT.proxy_sc,
        kind=PayoutKind.PAYOUT,
        tokens_from=0,
        tokens_to=1000,
        expected_nanoton=80_000,
        wallet_address="0:" + "44" * 32,
        seqno=1,
        valid_until=0,
        boc=b"",
        normalized_hash=b"",
        state=PayoutState.PAID,
        amount_nanoton=80_000,
        id=7,
    )
    paid = earning_pipeline(inputs(cashout=CashoutStatus(ready=True, last=payout)))
    assert paid.first_problem is None
    assert "#7 paid 0.00008 TON" in paid.stages[-1].reason
    locked = earning_pipeline(inputs(cashout=CashoutStatus(ready=False)))
    assert "--password-stdin" in locked.stages[-1].fix
