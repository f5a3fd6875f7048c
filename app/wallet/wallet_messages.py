"""Reading external messages to V4R2/V5R1 wallets and their data, as the contracts themselves do.

The simulated chain uses this to decide what the real wallet code would do with a message: the
exit codes and the order of the checks follow the official contracts (V4R2: expiry, seqno, wallet
id, signature; V5R1: signature, seqno, wallet id, expiry).
"""

# pytoniq-core ships py.typed but leaves most methods unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

import nacl.exceptions
import nacl.signing
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.boc.slice import Slice
from pytoniq_core.tlb.account import StateInit
from pytoniq_core.tlb.transaction import ExternalMsgInfo, InternalMsgInfo, MessageAny

from app.wallet.chain import (
    WALLET_V4R2_CODE_HASH,
    WALLET_V5R1_CODE_HASH,
    normalized_external_hash,
    raw_address,
)

V5_SIGNED_EXTERNAL_OP: Final = 0x7369_676E
V5_ACTION_SEND_MSG: Final = 0x0EC3_C86D
SIGNATURE_BITS: Final = 512


class WalletKind(enum.Enum):
    V4R2 = "v4r2"
    V5R1 = "v5r1"


class ExitCode(enum.IntEnum):
    """Exit codes of the official wallet contracts (V4R2 / V5R1)."""

    CELL_UNDERFLOW = 9
    V4_SEQNO = 33
    V4_WALLET_ID = 34
    V4_SIGNATURE = 35
    V4_EXPIRED = 36
    V5_SIGNATURE_DISABLED = 132
    V5_SEQNO = 133
    V5_WALLET_ID = 134
    V5_SIGNATURE = 135
    V5_EXPIRED = 136
    V5_EXTERNAL_WITHOUT_IGNORE_ERRORS = 137
    V5_BAD_OPERATION = 65535


class MalformedMessageError(ValueError):
    """The bytes are not a well-formed external message (never reaches a contract)."""


class WalletRefusedError(Exception):
    """The wallet contract would throw before ``accept_message``: the message is not accepted."""

    def __init__(self, exit_code: int, reason: str) -> None:
        super().__init__(reason)
        self.exit_code = exit_code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ExternalEnvelope:
    """An external-in message: its destination, optional state_init and body."""

    destination: str
    body: Cell
    init_code: Cell | None
    init_data: Cell | None
    init_hash: bytes | None
    message_hash: bytes
    normalized_hash: bytes


@dataclass(frozen=True, slots=True)
class OutAction:
    """One ``send_msg`` action: the send mode and the internal message (relaxed), parsed."""

    mode: int
    destination: str
    value: int
    bounce: bool
    body: Cell | None
    state_init: StateInit | None = None  # deploys the destination when its hash is the address


@dataclass(frozen=True, slots=True)
class WalletData:
    """The persistent data of a wallet contract that the checks need."""

    kind: WalletKind
    seqno: int
    wallet_id: int
    public_key: bytes
    signature_allowed: bool


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A wallet's signed external body, checked against its data; ``actions`` may be empty."""

    seqno: int
    actions: tuple[OutAction, ...]
    # Set when the contract accepts the message but fails afterwards (V5R1 exit 137, bad ops).
    post_accept_exit: int | None = None


def parse_envelope(boc: bytes) -> ExternalEnvelope:
    """Decode a BOC holding one external-in message, or raise :class:`MalformedMessageError`."""
    try:
        cell = Cell.one_from_boc(boc)
        message = MessageAny.deserialize(cell.begin_parse())
    except Exception as exc:  # pytoniq-core raises many unrelated types on garbage
        raise MalformedMessageError("not a valid message BOC") from exc
    if not isinstance(message.info, ExternalMsgInfo) or message.info.dest is None:
        raise MalformedMessageError("not an external message to an account")
    init = message.init
    code = getattr(init, "code", None)
    data = getattr(init, "data", None)
    return ExternalEnvelope(
        destination=raw_address(message.info.dest),
        body=message.body,
        init_code=code,
        init_data=data,
        init_hash=bytes(init.serialize().hash) if init is not None else None,
        message_hash=bytes(cell.hash),
        normalized_hash=normalized_external_hash(cell),
    )


def wallet_kind(code: Cell) -> WalletKind | None:
    """Which standard wallet a code cell is, if any."""
    code_hash = bytes(code.hash)
    if code_hash == WALLET_V4R2_CODE_HASH:
        return WalletKind.V4R2
    if code_hash == WALLET_V5R1_CODE_HASH:
        return WalletKind.V5R1
    return None


def read_wallet_data(kind: WalletKind, data: Cell) -> WalletData:
    cs = data.begin_parse()
    if kind is WalletKind.V4R2:
        seqno, wallet_id = cs.load_uint(32), cs.load_uint(32)
        return WalletData(kind, seqno, wallet_id, bytes(cs.load_bytes(32)), True)
    allowed = bool(cs.load_bit())
    seqno, wallet_id = cs.load_uint(32), cs.load_uint(32)
    return WalletData(kind, seqno, wallet_id, bytes(cs.load_bytes(32)), allowed)


def bump_seqno(kind: WalletKind, data: Cell) -> Cell:
    """The wallet data with seqno + 1 and everything else unchanged (what ``set_data`` stores)."""
    cs = data.begin_parse()
    out = Builder()
    if kind is WalletKind.V5R1:
        out.store_bit(cs.load_bit())
    out.store_uint((cs.load_uint(32) + 1) & 0xFFFF_FFFF, 32)
    out.store_slice(cs)
    cell: Cell = out.end_cell()
    return cell


def check_request(
    data: WalletData, body: Cell, now: int, *, verify_signature: bool = True
) -> SignedRequest:
    """Run the wallet's pre-accept checks; raise :class:`WalletRefusedError` if it throws."""
    try:
        if data.kind is WalletKind.V4R2:
            return _check_v4(data, body.begin_parse(), now, verify_signature)
        return _check_v5(data, body.begin_parse(), now, verify_signature)
    except WalletRefusedError:
        raise
    except Exception as exc:  # truncated bodies: the contract dies with a cell underflow
        raise WalletRefusedError(ExitCode.CELL_UNDERFLOW, "the message body is truncated") from exc


def _verify(public_key: bytes, signed: Cell, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public_key).verify(bytes(signed.hash), signature)
    except (nacl.exceptions.BadSignatureError, ValueError):
        return False
    return True


def _check_v4(data: WalletData, cs: Slice, now: int, verify_signature: bool) -> SignedRequest:
    signature = bytes(cs.load_bytes(SIGNATURE_BITS // 8))
    signed = cs.to_cell()
    wallet_id, valid_until, seqno = cs.load_uint(32), cs.load_uint(32), cs.load_uint(32)
    if valid_until <= now:
        raise WalletRefusedError(ExitCode.V4_EXPIRED, "the message has expired")
    if seqno != data.seqno:
        raise WalletRefusedError(ExitCode.V4_SEQNO, "the seqno does not match (already used?)")
    if wallet_id != data.wallet_id:
        raise WalletRefusedError(ExitCode.V4_WALLET_ID, "the wallet id does not match")
    if verify_signature and not _verify(data.public_key, signed, signature):
        raise WalletRefusedError(ExitCode.V4_SIGNATURE, "the signature is not valid")
    # Accepted from here on: the new seqno is committed whatever happens next.
    if cs.remaining_bits < 8:
        return SignedRequest(seqno, (), post_accept_exit=ExitCode.CELL_UNDERFLOW)
    if cs.load_uint(8) != 0:
        # Plugin operations: this simulation does not run plugins; count it as a failed compute.
        return SignedRequest(seqno, (), post_accept_exit=ExitCode.V5_BAD_OPERATION)
    actions: list[OutAction] = []
    try:
        while cs.remaining_refs:
            mode = cs.load_uint(8)
            actions.append(_out_action(mode, cs.load_ref()))
    except Exception:
        return SignedRequest(seqno, (), post_accept_exit=ExitCode.CELL_UNDERFLOW)
    return SignedRequest(seqno, tuple(actions))


def _check_v5(data: WalletData, cs: Slice, now: int, verify_signature: bool) -> SignedRequest:
    if cs.remaining_bits < 32 + SIGNATURE_BITS or cs.preload_uint(32) != V5_SIGNED_EXTERNAL_OP:
        raise WalletRefusedError(ExitCode.V5_BAD_OPERATION, "not a signed V5 request")
    bits = cs.remaining_bits - SIGNATURE_BITS
    signed_part = Builder().store_bits(cs.load_bits(bits))
    for ref_index in range(cs.remaining_refs):
        signed_part.store_ref(cs.preload_ref(ref_index))
    signed = signed_part.end_cell()
    signature = bytes(cs.load_bytes(SIGNATURE_BITS // 8))
    if verify_signature and not _verify(data.public_key, signed, signature):
        raise WalletRefusedError(ExitCode.V5_SIGNATURE, "the signature is not valid")
    if not data.signature_allowed:
        raise WalletRefusedError(ExitCode.V5_SIGNATURE_DISABLED, "signatures are disabled")
    body = signed.begin_parse().skip_bits(32)
    wallet_id, valid_until, seqno = body.load_uint(32), body.load_uint(32), body.load_uint(32)
    if seqno != data.seqno:
        raise WalletRefusedError(ExitCode.V5_SEQNO, "the seqno does not match (already used?)")
    if wallet_id != data.wallet_id:
        raise WalletRefusedError(ExitCode.V5_WALLET_ID, "the wallet id does not match")
    if valid_until <= now:
        raise WalletRefusedError(ExitCode.V5_EXPIRED, "the message has expired")
    try:
        actions = _v5_actions(body)
    except WalletRefusedError as failed:
        return SignedRequest(seqno, (), post_accept_exit=failed.exit_code)
    except Exception:
        return SignedRequest(seqno, (), post_accept_exit=ExitCode.CELL_UNDERFLOW)
    return SignedRequest(seqno, actions)


def _v5_actions(body: Slice) -> tuple[OutAction, ...]:
    out_list = body.load_ref() if body.load_bit() else None
    if body.load_bit():
        # Extended actions (extensions, signature mode) are not simulated.
        raise WalletRefusedError(ExitCode.V5_BAD_OPERATION, "extended actions are not supported")
    actions: list[OutAction] = []
    node = out_list
    while node is not None and (node.refs or node.bits):
        cs = node.begin_parse()
        previous = cs.load_ref()
        if cs.load_uint(32) != V5_ACTION_SEND_MSG:
            raise WalletRefusedError(147, "only send_msg actions are allowed")
        mode = cs.load_uint(8)
        if not mode & 2:
            raise WalletRefusedError(
                ExitCode.V5_EXTERNAL_WITHOUT_IGNORE_ERRORS, "external sends must ignore errors"
            )
        actions.append(_out_action(mode, cs.load_ref()))
        node = previous
    # The list is linked newest-first; actions run oldest-first.
    return tuple(reversed(actions))


def _out_action(mode: int, message_cell: Cell) -> OutAction:
    message = MessageAny.deserialize(message_cell.begin_parse())
    if not isinstance(message.info, InternalMsgInfo) or message.info.dest is None:
        raise WalletRefusedError(ExitCode.CELL_UNDERFLOW, "only internal messages can be sent")
    body = message.body
    has_body = body is not None and (len(body.bits) > 0 or len(body.refs) > 0)
    return OutAction(
        mode=mode,
        destination=raw_address(message.info.dest),
        value=int(message.info.value.grams),
        bounce=bool(message.info.bounce),
        body=body if has_body else None,
        state_init=message.init,
    )
