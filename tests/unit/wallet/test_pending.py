"""Pending-send records: durability, one per wallet, damaged files, and resolving outcomes."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from app.core.money import Nanoton
from app.wallet.chain import ChainTransaction, InboundMessage, OutboundMessage
from app.wallet.pending import (
    BroadcastState,
    PendingSend,
    PendingSendError,
    PendingSendStore,
    SendStatus,
    find_outcome,
)

DEST = "0:" + "ab" * 32
RECORD = PendingSend(
    wallet_id="w1",
    wallet_address="0:" + "01" * 32,
    seqno=4,
    valid_until=1_790_000_300,
    boc=b"\xb5\xee\x9c\x72boc",
    message_hash=b"\x01" * 32,
    normalized_hash=b"\x02" * 32,
    destination="UQ...",
    destination_raw=DEST,
    amount=Nanoton(1_000),
    send_all=False,
    comment="hi",
    created_at=1_790_000_000,
)


@pytest.fixture
def store(tmp_path: Path) -> PendingSendStore:
    return PendingSendStore(tmp_path / "wallets")


def test_add_get_replace_remove(store: PendingSendStore) -> None:
    assert store.get("w1") is None
    assert store.all() == []
    store.add(RECORD)
    assert store.get("w1") == RECORD
    assert stat.S_IMODE(os.stat(store.path("w1")).st_mode) == 0o600
    sent = RECORD.broadcasted()
    assert (sent.state, sent.broadcasts) == (BroadcastState.BROADCAST, 1)
    store.replace(sent)
    assert store.all() == [sent]
    store.remove(sent)
    assert store.get("w1") is None
    store.remove(sent)  # already gone: nothing to do


def test_only_one_pending_send_per_wallet(store: PendingSendStore) -> None:
    store.add(RECORD)
    with pytest.raises(PendingSendError, match="not confirmed yet"):
        store.add(replace(RECORD, message_hash=b"\x09" * 32))
    store.add(replace(RECORD, wallet_id="w2"))
    assert [r.wallet_id for r in store.all()] == ["w1", "w2"]


def test_replace_and_remove_only_touch_the_same_send(store: PendingSendStore) -> None:
    other = replace(RECORD, message_hash=b"\x09" * 32)
    with pytest.raises(PendingSendError, match="changed"):
        store.replace(RECORD)
    store.add(RECORD)
    with pytest.raises(PendingSendError, match="changed"):
        store.replace(other)
    store.remove(other)
    assert store.get("w1") == RECORD


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],
        lambda text: "",
        lambda text: "[]",
        lambda text: text.replace('"version": 1', '"version": 7'),
        lambda text: text.replace('"seqno": 4', '"seqno": "4"'),
        lambda text: text.replace('"state": "signed"', '"state": "lost"'),
        lambda text: text.replace('"send_all": false', '"send_all": 0'),
        lambda text: text.replace('"boc": "', '"boc": "!'),
        lambda text: text.replace('"comment": "hi"', '"comment": 5'),
        lambda text: text.replace('"seqno": 4,', '"seqno": 4, "extra": 1,'),
    ],
    ids=[
        "truncated",
        "empty",
        "not-object",
        "version",
        "seqno-type",
        "state",
        "bool-type",
        "base64",
        "comment-type",
        "unknown-field",
    ],
)
def test_damaged_record_blocks_sends_and_is_never_overwritten(
    store: PendingSendStore, damage: object
) -> None:
    store.add(RECORD)
    path = store.path("w1")
    damaged = damage(path.read_text())  # type: ignore[operator]
    path.write_text(damaged)
    with pytest.raises(PendingSendError, match="damaged"):
        store.get("w1")
    with pytest.raises(PendingSendError, match="damaged"):
        store.add(replace(RECORD, message_hash=b"\x09" * 32))
    with pytest.raises(PendingSendError):
        store.all()
    assert path.read_text() == damaged


def test_record_of_another_wallet_is_refused(store: PendingSendStore) -> None:
    store.add(RECORD)
    data = json.loads(store.path("w1").read_text())
    data["wallet_id"] = "w9"
    store.path("w1").write_text(json.dumps(data))
    with pytest.raises(PendingSendError, match="another wallet"):
        store.get("w1")


def test_unsafe_wallet_ids(store: PendingSendStore) -> None:
    for bad in ("", "a/b", "a\\b", ".x"):
        with pytest.raises(ValueError, match="invalid wallet id"):
            store.path(bad)


def _tx(
    *,
    norm: bytes = RECORD.normalized_hash,
    compute: bool | None = True,
    action: bool | None = True,
    aborted: bool = False,
    outs: tuple[OutboundMessage, ...] = (OutboundMessage(DEST, Nanoton(1_000), "hi", False),),
) -> ChainTransaction:
    return ChainTransaction(
        account=RECORD.wallet_address,
        hash=b"\x03" * 32,
        lt=10,
        utime=1_790_000_010,
        prev_lt=0,
        prev_hash=b"\x00" * 32,
        in_msg=InboundMessage(True, None, Nanoton(0), None, False, False),
        out_msgs=outs,
        total_fees=Nanoton(2_000_000),
        compute_success=compute,
        compute_exit_code=0,
        action_success=action,
        aborted=aborted,
        in_msg_normalized_hash=norm,
    )


def test_outcome_sent_needs_the_matching_transaction_that_sent_money() -> None:
    tx = _tx()
    outcome = find_outcome(RECORD, [_tx(norm=b"\x07" * 32), tx])
    assert outcome.status is SendStatus.SENT
    assert outcome.transaction is tx


@pytest.mark.parametrize(
    "tx",
    [
        _tx(compute=False),
        _tx(compute=None),
        _tx(action=False),
        _tx(aborted=True),
        _tx(outs=()),
        _tx(outs=(OutboundMessage("0:" + "cd" * 32, Nanoton(1_000), None, False),)),
    ],
    ids=["compute-failed", "no-compute", "action-failed", "aborted", "no-out-msg", "other-dest"],
)
def test_outcome_failed_when_the_transaction_sent_nothing(tx: ChainTransaction) -> None:
    outcome = find_outcome(RECORD, [tx])
    assert outcome.status is SendStatus.FAILED
    assert "fee was charged" in outcome.message


def test_outcome_not_sent_when_another_message_used_the_seqno() -> None:
    outcome = find_outcome(RECORD, [_tx(norm=b"\x07" * 32)])
    assert outcome.status is SendStatus.NOT_SENT
    assert outcome.transaction is None
