"""What the COCOON contract models share: TVM exit codes, messages and TVM-like slice helpers.

The exit codes are the contracts' own (the table is in ``docs/contracts.md`` §2); a model stops
with one by raising :class:`Thrown`. A model's successful compute phase is a :class:`Decision`
(new data, the amount to reserve, the :class:`Send` actions) that ``cocoon_execution`` runs as the
action phase. Addresses in bodies load as the current TVM's ``load_msg_addr`` does
(:func:`msg_addr`); a message may only go to a plain address on the base or masterchain
(:func:`destination`).
"""

# pytoniq-core ships py.typed but leaves most methods unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.boc.slice import Slice, SliceError
from pytoniq_core.boc.tvm_bitarray import TvmBitarrayException
from pytoniq_core.tlb.account import StateInit

from app.core.money import Nanoton
from app.wallet.cocoon_contracts import CocoonContractError

# The contracts' gas estimates: a worker refuses 0.1 TON or less and keeps at least 0.11 TON.
COMMISSION_ESTIMATE: Final = Nanoton(100_000_000)
STORAGE_ESTIMATE: Final = Nanoton(10_000_000)
MODE_PAY_FEES_SEPARATELY: Final = 1
MODE_CARRY_ALL: Final = 128
_COINS_LIMIT: Final = 1 << 120
# What pytoniq-core and bitarray raise on short or odd slices (our readers: on damaged data).
UNDERFLOWS: Final = (TvmBitarrayException, IndexError, ValueError, SliceError, CocoonContractError)


class CocoonExit(enum.IntEnum):
    """Exit codes of the modelled contracts (docs/contracts.md §2; 65535 is the model's own)."""

    RANGE_CHECK = 5
    CELL_UNDERFLOW = 9
    OLD_MESSAGE = 1000
    LOW_MSG_VALUE = 1003
    SIGNED_MSG_FORMAT_MISMATCH = 1005
    CLOSED = 1006
    BAD_SIGNATURE = 1007
    EXPECTED_MESSAGE_FROM_OWNER = 1010
    UNKNOWN_OP = 1012
    UNKNOWN_TEXT_OP = 1013
    CONTRACT_ADDRESS_MISMATCH = 1014
    EXPECTED_MY_ADDRESS = 1015
    NOT_MODELLED = 0xFFFF


@dataclass(frozen=True, slots=True)
class InternalMessage:
    """An internal message in flight on the simulated chain (value as delivered)."""

    source: str
    destination: str
    value: int
    bounce: bool
    body: Cell | None
    bounced: bool = False
    state_init: StateInit | None = None


class Thrown(Exception):  # noqa: N818 - a TVM exception, not an error of ours
    """``throw(exit_code)``: the compute phase stops with ``exit_code``."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Send:
    """A ``send_raw_message`` action."""

    destination: str | None  # None: not a valid destination (the action phase fails)
    value: int
    mode: int
    bounce: bool
    body: Cell


@dataclass(frozen=True, slots=True)
class Decision:
    """A successful compute phase: new data, the exact amount to keep, the messages to send."""

    data: Cell | None = None
    reserve: int = 0
    sends: tuple[Send, ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    """What a model's ``recv_internal`` sees: its address, balance, the message and its data."""

    address: str
    balance_before: int  # the balance before this message's value was credited
    message: InternalMessage
    data: Cell


def bounce_body(body: Cell | None) -> Cell:
    """A bounced message's body: 0xffffffff and the first 256 bits of the original body."""
    out = Builder().store_uint(0xFFFF_FFFF, 32)
    if body is not None:
        cs = body.begin_parse()
        out.store_bits(cs.load_bits(min(256, cs.remaining_bits)))
    cell: Cell = out.end_cell()
    return cell


def end_parse(cs: Slice) -> None:
    """``end_parse``: anything left (bits or refs) is a cell underflow."""
    if cs.remaining_bits or cs.remaining_refs:
        raise Thrown(CocoonExit.CELL_UNDERFLOW)


def skip_bits(cs: Slice, bits: int) -> None:
    """``skip_bits``: skipping past the end is a cell underflow."""
    if cs.remaining_bits < bits:  # pytoniq-core's skip_bits does not check
        raise Thrown(CocoonExit.CELL_UNDERFLOW)
    cs.skip_bits(bits)


def msg_addr(cs: Slice) -> str:
    """``load_msg_addr`` as the current TVM runs it: addr_none, addr_extern and addr_std without
    anycast load as they are; anycast and addr_var are refused with a cell underflow (measured in
    the sandbox). The bits are kept as loaded ("0"/"1"): FunC compares and re-stores them raw."""
    peek = cs.copy()
    tag = peek.load_uint(2)
    if tag == 0:
        length = 2
    elif tag == 1:
        length = 2 + 9 + int(peek.load_uint(9))
    elif tag == 2 and not peek.load_bit():
        length = 2 + 1 + 8 + 256
    else:
        raise Thrown(CocoonExit.CELL_UNDERFLOW)
    if cs.remaining_bits < length:
        raise Thrown(CocoonExit.CELL_UNDERFLOW)
    return str(cs.load_bits(length).to01())


def addr_bits(address: str) -> str:
    """A raw address as ``my_address()`` or a sender's ``load_msg_addr`` gives it (addr_std)."""
    return msg_addr(Builder().store_address(Address(address)).end_cell().begin_parse())


def destination(bits: str) -> str | None:
    """Where a message to ``bits`` can go: an addr_std on the base or masterchain; anything else
    fails the action phase (34 for addr_none/extern, 36 for an unknown workchain)."""
    if len(bits) != 267 or not bits.startswith("100"):
        return None
    address = Builder().store_bits(bits).end_cell().begin_parse().load_address()
    if not isinstance(address, Address) or address.wc not in (0, -1):
        return None
    return f"{address.wc}:{address.hash_part.hex()}"


def store_coins(value: int) -> int:
    """``store_coins``: a value outside 0 ≤ value < 2^120 is a range check."""
    if not 0 <= value < _COINS_LIMIT:
        raise Thrown(CocoonExit.RANGE_CHECK)
    return value


def query_body(op: int, query_id: int) -> Cell:
    """A body of just op and query id (payout, excesses)."""
    cell: Cell = Builder().store_uint(op, 32).store_uint(query_id, 64).end_cell()
    return cell
