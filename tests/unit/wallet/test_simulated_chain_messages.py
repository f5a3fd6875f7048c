"""The simulated chain's reading of wallet externals: odd bodies the app never sends itself."""

# pytoniq-core ships py.typed but leaves most methods unannotated.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

from typing import Any

import pytest
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.transaction import ExternalMsgInfo, MessageAny

from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair
from app.wallet.wallet_messages import (
    V5_ACTION_SEND_MSG,
    V5_SIGNED_EXTERNAL_OP,
    ExitCode,
    WalletData,
    WalletKind,
    WalletRefusedError,
    check_request,
    read_wallet_data,
    wallet_kind,
)

NOW = 1_800_000_000
NO_ADDRESS: Any = None


def data_of(keys: KeyPair, version: WalletVersion) -> WalletData:
    contract = WalletContract(version, TonNetwork.TESTNET, keys.public_key)
    return read_wallet_data(WalletKind(version.value), contract.initial_data)


def v4_body(keys: KeyPair, data: WalletData, tail: Builder) -> Cell:
    signed = (
        Builder()
        .store_uint(data.wallet_id, 32)
        .store_uint(NOW + 60, 32)
        .store_uint(0, 32)
        .store_cell(tail.end_cell())
        .end_cell()
    )
    cell: Cell = Builder().store_bytes(keys.sign(signed.hash)).store_cell(signed).end_cell()
    return cell


def v5_body(keys: KeyPair, data: WalletData, tail: Builder) -> Cell:
    signed = (
        Builder()
        .store_uint(V5_SIGNED_EXTERNAL_OP, 32)
        .store_uint(data.wallet_id, 32)
        .store_uint(NOW + 60, 32)
        .store_uint(0, 32)
        .store_cell(tail.end_cell())
        .end_cell()
    )
    cell: Cell = Builder().store_cell(signed).store_bytes(keys.sign(signed.hash)).end_cell()
    return cell


def action_list(op: int, mode: int, message: Cell) -> Builder:
    action = Builder().store_ref(Cell.empty()).store_uint(op, 32).store_uint(mode, 8)
    action.store_ref(message)
    out = Builder()
    out.store_uint(1, 1).store_ref(action.end_cell()).store_uint(0, 1)
    return out


def external_out() -> Cell:
    cell: Cell = MessageAny(
        info=ExternalMsgInfo(NO_ADDRESS, Address("0:" + "ab" * 32), 0),
        init=None,
        body=Cell.empty(),
    ).serialize()
    return cell


def test_wallet_kind_of_other_code() -> None:
    assert wallet_kind(Builder().store_uint(1, 8).end_cell()) is None


@pytest.mark.parametrize(
    ("tail", "exit_code"),
    [
        (Builder(), ExitCode.CELL_UNDERFLOW),  # no op byte at all
        (Builder().store_uint(1, 8), ExitCode.V5_BAD_OPERATION),  # plugin op: not simulated
        (
            Builder().store_uint(0, 8).store_uint(3, 8).store_ref(Cell.empty()),
            ExitCode.CELL_UNDERFLOW,
        ),  # the "message" is an empty cell
    ],
    ids=["no-op", "plugin-op", "garbage-message"],
)
def test_v4_failures_after_accepting(vector_keys: KeyPair, tail: Builder, exit_code: int) -> None:
    data = data_of(vector_keys, WalletVersion.V4R2)
    request = check_request(data, v4_body(vector_keys, data, tail), NOW)
    assert (request.seqno, request.actions, request.post_accept_exit) == (0, (), exit_code)


def test_v4_too_short_to_hold_a_signature(vector_keys: KeyPair) -> None:
    data = data_of(vector_keys, WalletVersion.V4R2)
    with pytest.raises(WalletRefusedError) as caught:
        check_request(data, Builder().store_uint(1, 64).end_cell(), NOW)
    assert caught.value.exit_code == ExitCode.CELL_UNDERFLOW


@pytest.mark.parametrize(
    ("tail", "exit_code"),
    [
        (
            Builder().store_uint(0, 1).store_uint(1, 1).store_ref(Cell.empty()),
            ExitCode.V5_BAD_OPERATION,
        ),  # extended actions: not simulated
        (action_list(0x12345678, 3, Cell.empty()), 147),  # not a send_msg action
        (action_list(V5_ACTION_SEND_MSG, 3, Cell.empty()), ExitCode.CELL_UNDERFLOW),
        (action_list(V5_ACTION_SEND_MSG, 3, external_out()), ExitCode.CELL_UNDERFLOW),
        (Builder(), ExitCode.CELL_UNDERFLOW),  # no action list bit
    ],
    ids=["extended", "other-action", "garbage-message", "external-out", "truncated"],
)
def test_v5_failures_after_accepting(vector_keys: KeyPair, tail: Builder, exit_code: int) -> None:
    data = data_of(vector_keys, WalletVersion.V5R1)
    request = check_request(data, v5_body(vector_keys, data, tail), NOW)
    assert (request.seqno, request.actions, request.post_accept_exit) == (0, (), exit_code)


def test_v5_without_actions_is_accepted(vector_keys: KeyPair) -> None:
    data = data_of(vector_keys, WalletVersion.V5R1)
    tail = Builder().store_uint(0, 1).store_uint(0, 1)
    request = check_request(data, v5_body(vector_keys, data, tail), NOW)
    assert (request.actions, request.post_accept_exit) == ((), None)


def test_v5_with_signatures_disabled(vector_keys: KeyPair) -> None:
    data = data_of(vector_keys, WalletVersion.V5R1)
    disabled = WalletData(data.kind, 0, data.wallet_id, data.public_key, False)
    body = v5_body(vector_keys, data, Builder().store_uint(0, 2))
    with pytest.raises(WalletRefusedError) as caught:
        check_request(disabled, body, NOW)
    assert caught.value.exit_code == ExitCode.V5_SIGNATURE_DISABLED


def test_v5_wrong_op(vector_keys: KeyPair) -> None:
    data = data_of(vector_keys, WalletVersion.V5R1)
    body = Builder().store_uint(0xDEADBEEF, 32).store_bytes(b"\x00" * 64).end_cell()
    with pytest.raises(WalletRefusedError) as caught:
        check_request(data, body, NOW)
    assert caught.value.exit_code == ExitCode.V5_BAD_OPERATION
