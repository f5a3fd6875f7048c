"""The chain access contract (``ChainBackend``), its value types and its typed errors.

Every backend (live liteservers, the simulated local chain) speaks this interface; wallet code never
touches pytoniq's network classes directly. Addresses are raw strings (``"0:<64 hex>"``).
"""

# pytoniq-core ships py.typed but leaves most methods unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.transaction import MessageAny

from app.core.errors import UserFacingError
from app.core.money import Nanoton
from app.core.observable import Observable

AccountStatus = Literal["uninit", "active", "frozen", "nonexist"]

# Official wallet code hashes (the code cells pytoniq ships are byte-identical to @ton/ton's).
WALLET_V4R2_CODE_HASH = bytes.fromhex(
    "feb5ff6820e2ff0d9483e7e0d62c817d846789fb4ae580c878866d959dabd5c0"
)
WALLET_V5R1_CODE_HASH = bytes.fromhex(
    "20834b7b72b112147e1b2fb457b84e74d1a30f04f737d4f62a668e9552d2b72f"
)


class ChainError(UserFacingError):
    """Base of every error a chain backend raises on purpose."""


class ChainOffline(ChainError):  # noqa: N818 - names fixed by the wallet API
    """No liteserver (or local chain) can be reached right now."""

    def __init__(
        self, message: str = "The TON network cannot be reached.", *, hint: str = ""
    ) -> None:
        super().__init__(message, hint=hint or "Check the internet connection; retrying shortly.")


class ChainTimeout(ChainError):  # noqa: N818 - names fixed by the wallet API
    """A request was sent but no answer came back in time; its outcome is unknown."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(
            f"The TON network did not answer ({what}) within {seconds:g} s.",
            hint="The network may be slow; the app will retry.",
        )
        self.what = what
        self.seconds = seconds


class MessageRejected(ChainError):  # noqa: N818 - names fixed by the wallet API
    """The network refused an external message.

    ``seqno_used`` is true when the wallet's seqno no longer matches the message (it was already
    used, typically by this very message or an earlier send): refresh the wallet, never resend.
    """

    def __init__(self, reason: str, *, seqno_used: bool, exit_code: int | None = None) -> None:
        hint = (
            "The wallet's sequence number has moved on: refresh and check the history before "
            "sending again."
            if seqno_used
            else "Nothing was sent; no fee was charged."
        )
        super().__init__(f"The network rejected the message: {reason}", hint=hint)
        self.reason = reason
        self.seqno_used = seqno_used
        self.exit_code = exit_code


class GetMethodFailed(ChainError):  # noqa: N818 - names fixed by the wallet API
    """A get-method ended with a non-zero exit code (or the method does not exist)."""

    def __init__(self, method: str, exit_code: int) -> None:
        super().__init__(f"The contract's '{method}' get-method failed (exit code {exit_code}).")
        self.method = method
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account as proven by the chain: balance, status, code/data (BOCs) and its last tx."""

    address: str
    balance: Nanoton
    status: AccountStatus
    code: bytes | None = None
    data: bytes | None = None
    last_tx_lt: int = 0
    last_tx_hash: bytes = b"\x00" * 32

    def __repr__(self) -> str:
        # Code/data BOCs are large and public; a short repr keeps logs readable.
        return (
            f"AccountState({self.address}, balance={self.balance}, status={self.status}, "
            f"last_tx_lt={self.last_tx_lt})"
        )


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """The message that started a transaction. External messages have no source and no value."""

    external: bool
    source: str | None
    value: Nanoton
    comment: str | None
    bounced: bool
    bounce: bool


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """An internal message a transaction sent."""

    destination: str
    value: Nanoton
    comment: str | None
    bounce: bool


@dataclass(frozen=True, slots=True)
class ChainTransaction:
    """One transaction of one account, decoded into what a wallet needs to show and reconcile."""

    account: str
    hash: bytes
    lt: int
    utime: int
    prev_lt: int
    prev_hash: bytes
    in_msg: InboundMessage | None
    out_msgs: tuple[OutboundMessage, ...]
    total_fees: Nanoton
    compute_success: bool | None
    compute_exit_code: int | None
    action_success: bool | None
    aborted: bool
    # TEP-467 normalized hash of the inbound external message (None for internal ones).
    in_msg_normalized_hash: bytes | None = None


@runtime_checkable
class ChainBackend(Protocol):
    """Async access to one TON network. Every call is bounded in time and raises ``ChainError``s."""

    @property
    def online(self) -> Observable[bool]: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def get_account_state(self, address: str) -> AccountState: ...

    async def get_seqno(self, address: str) -> int: ...

    async def get_server_time(self) -> int: ...

    async def send_boc(self, boc: bytes) -> None: ...

    async def get_transactions(
        self,
        address: str,
        limit: int,
        from_lt: int | None = None,
        from_hash: bytes | None = None,
    ) -> list[ChainTransaction]: ...

    async def run_get_method(self, address: str, method: str, stack: list[Any]) -> list[Any]: ...

    async def emulate_fee(self, boc: bytes) -> Nanoton | None: ...


def raw_address(address: str | Address) -> str:
    """The canonical raw form ``wc:hex`` of any address pytoniq can read."""
    parsed = address if isinstance(address, Address) else Address(address)
    return f"{parsed.wc}:{parsed.hash_part.hex()}"


def wallet_seqno(state: AccountState) -> int:
    """The seqno stored in a V4R2/V5R1 wallet's proven data (0 when not deployed yet).

    Read from the account data rather than the ``seqno`` get-method: remote get-methods are never
    proven by liteservers, the account state is.
    """
    if state.status != "active":
        return 0
    if state.code is None or state.data is None:
        raise ChainError(f"Account {state.address} is active but its state was not returned.")
    code_hash = Cell.one_from_boc(state.code).hash
    data = Cell.one_from_boc(state.data).begin_parse()
    if code_hash == WALLET_V4R2_CODE_HASH:
        return int(data.load_uint(32))
    if code_hash == WALLET_V5R1_CODE_HASH:
        data.skip_bits(1)  # is_signature_allowed
        return int(data.load_uint(32))
    raise ChainError(
        f"Account {state.address} is not a V4R2 or V5R1 wallet.",
        hint="Only standard wallets can be used here.",
    )


def normalized_external_hash(message: Cell) -> bytes:
    """TEP-467 normalized hash of an external-in message cell.

    The message is rebuilt with ``src = addr_none``, ``import_fee = 0``, no state_init and the body
    as a reference, so that re-encodings of one signed body hash the same.
    """
    try:
        parsed = MessageAny.deserialize(message.begin_parse())
    except Exception as exc:  # pytoniq-core raises assorted types on garbage
        raise ValueError("not a message") from exc
    if not parsed.is_external or parsed.info.dest is None:
        raise ValueError("not an external-in message")
    body = parsed.body if parsed.body is not None else Cell.empty()
    normalized = (
        Builder()
        .store_uint(0b10, 2)
        .store_uint(0, 2)
        .store_address(parsed.info.dest)
        .store_coins(0)
        .store_bit(0)
        .store_bit(1)
        .store_ref(body)
        .end_cell()
    )
    return bytes(normalized.hash)


def text_comment(body: Cell | None) -> str | None:
    """The plain-text comment of a message body (op 0 + snake string), or None."""
    if body is None:
        return None
    cs = body.begin_parse()
    if cs.remaining_bits < 32 or cs.load_uint(32) != 0:
        return None
    chunks: list[bytes] = []
    while True:
        # A snake string: whole bytes in each cell, continued in at most one reference.
        if cs.remaining_bits % 8 or cs.remaining_refs > 1:
            return None
        chunks.append(bytes(cs.load_bytes(cs.remaining_bits // 8)))
        if not cs.remaining_refs:
            break
        cs = cs.load_ref().begin_parse()
    try:
        return b"".join(chunks).decode()
    except UnicodeDecodeError:
        return None
