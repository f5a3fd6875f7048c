"""Durable pending-send records: one per wallet, written (fsync) before a transfer is broadcast.

A record holds the exact signed BOC and its hashes, so after a crash the app can find out what
happened to the message (or re-broadcast the very same bytes while they are valid) instead of
signing a new one. A damaged record blocks new sends for that wallet rather than being guessed at.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

from app.core.atomic import write_private_atomic
from app.core.errors import UserFacingError
from app.core.money import Nanoton
from app.wallet.chain import ChainTransaction

PENDING_SUFFIX: Final = ".pending.json"
_FORMAT_VERSION: Final = 1


class BroadcastState(enum.StrEnum):
    """How far a pending send got before the app last saw it."""

    SIGNED = "signed"  # written; the broadcast may or may not have reached the network
    BROADCAST = "broadcast"  # a liteserver accepted the message; waiting for the transaction


class PendingSendError(UserFacingError):
    """A pending-send record problem (another send in progress, or a damaged record)."""


@dataclass(frozen=True, slots=True)
class PendingSend:
    """A signed transfer whose fate is not known yet."""

    wallet_id: str
    wallet_address: str  # raw form
    seqno: int
    valid_until: int
    boc: bytes
    message_hash: bytes
    normalized_hash: bytes
    destination: str  # as the user confirmed it
    destination_raw: str
    amount: Nanoton  # 0 for "send all"
    send_all: bool
    comment: str | None
    created_at: int
    state: BroadcastState = BroadcastState.SIGNED
    broadcasts: int = 0

    def broadcasted(self) -> PendingSend:
        return replace(self, state=BroadcastState.BROADCAST, broadcasts=self.broadcasts + 1)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for field in ("boc", "message_hash", "normalized_hash"):
            data[field] = base64.b64encode(data[field]).decode("ascii")
        data["state"] = self.state.value
        data["version"] = _FORMAT_VERSION
        return data

    @classmethod
    def from_json(cls, data: Any) -> PendingSend:
        if not isinstance(data, dict) or data.pop("version", None) != _FORMAT_VERSION:
            raise ValueError("unknown pending-send format")
        for field in ("boc", "message_hash", "normalized_hash"):
            data[field] = base64.b64decode(data[field], validate=True)
        data["state"] = BroadcastState(data["state"])
        record = cls(**data)
        _check_types(record)
        return record


def _check_types(record: PendingSend) -> None:
    expected: dict[str, type | tuple[type, ...]] = {
        "wallet_id": str,
        "wallet_address": str,
        "seqno": int,
        "valid_until": int,
        "destination": str,
        "destination_raw": str,
        "amount": int,
        "send_all": bool,
        "comment": (str, type(None)),
        "created_at": int,
        "broadcasts": int,
    }
    for name, kind in expected.items():
        if not isinstance(getattr(record, name), kind):
            raise TypeError(name)


class PendingSendStore:
    """Pending-send records as one small private file per wallet in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def path(self, wallet_id: str) -> Path:
        if not wallet_id or any(ch in wallet_id for ch in "/\\") or wallet_id.startswith("."):
            raise ValueError("invalid wallet id")
        return self._directory / f"{wallet_id}{PENDING_SUFFIX}"

    def get(self, wallet_id: str) -> PendingSend | None:
        """The wallet's pending send, None when there is none; a damaged file is an error."""
        path = self.path(wallet_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            record = PendingSend.from_json(json.loads(data))
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise PendingSendError(
                f"The record of an unfinished send ({path.name}) is damaged.",
                hint="It was kept as it is. Check the wallet history before sending again, then "
                "remove the file.",
            ) from None
        if record.wallet_id != wallet_id:
            raise PendingSendError(f"The record {path.name} belongs to another wallet.")
        return record

    def add(self, record: PendingSend) -> None:
        """Persist a new record; refuses while the wallet has one (one send at a time)."""
        if self.get(record.wallet_id) is not None:
            raise PendingSendError(
                "A previous send from this wallet is not confirmed yet.",
                hint="Wait until it is confirmed or expires (at most a few minutes).",
            )
        self._write(record)

    def replace(self, record: PendingSend) -> None:
        """Overwrite the wallet's record with a newer state of the same send."""
        current = self.get(record.wallet_id)
        if current is None or current.message_hash != record.message_hash:
            raise PendingSendError("The unfinished send changed while it was being updated.")
        self._write(record)

    def remove(self, record: PendingSend) -> None:
        """Delete the record of a resolved send (only if it is still that send's record)."""
        current = self.get(record.wallet_id)
        if current is not None and current.message_hash == record.message_hash:
            self.path(record.wallet_id).unlink()

    def all(self) -> list[PendingSend]:
        """Every readable pending record (damaged ones raise from :meth:`get`)."""
        if not self._directory.is_dir():
            return []
        ids = sorted(
            p.name[: -len(PENDING_SUFFIX)] for p in self._directory.glob(f"*{PENDING_SUFFIX}")
        )
        return [record for wallet_id in ids if (record := self.get(wallet_id)) is not None]

    def _write(self, record: PendingSend) -> None:
        data = json.dumps(record.to_json(), indent=2, sort_keys=True).encode()
        write_private_atomic(self.path(record.wallet_id), data)


class SendStatus(enum.StrEnum):
    """The fate of a signed transfer as far as the app knows it."""

    PENDING = "pending"  # broadcast, waiting for the transaction (or for expiry)
    UNKNOWN = "unknown"  # the broadcast may not have reached the network; will retry
    SENT = "sent"  # the transaction sent the money
    FAILED = "failed"  # the transaction ran but sent nothing; its fee was charged
    NOT_SENT = "not_sent"  # expired, or its seqno was used by another message: never sent


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """Where a send stands; ``transaction`` is set once the chain has it."""

    status: SendStatus
    record: PendingSend
    transaction: ChainTransaction | None = None
    message: str = ""


def find_outcome(record: PendingSend, transactions: Iterable[ChainTransaction]) -> SendOutcome:
    """Resolve ``record`` once the wallet's seqno has moved past it.

    The seqno alone proves nothing: the transaction must carry this message (same normalized
    hash), its compute and action phases must have succeeded, and it must have sent a message to
    the destination. Without such a transaction the seqno was used by another message, so this
    one can never be accepted any more.
    """
    for tx in transactions:
        if tx.in_msg_normalized_hash != record.normalized_hash:
            continue
        sent = (
            tx.compute_success is True
            and tx.action_success is True
            and not tx.aborted
            and any(out.destination == record.destination_raw for out in tx.out_msgs)
        )
        if sent:
            return SendOutcome(SendStatus.SENT, record, tx)
        return SendOutcome(
            SendStatus.FAILED,
            record,
            tx,
            message="The wallet processed the transfer but sent nothing; the network fee was "
            "charged.",
        )
    return SendOutcome(
        SendStatus.NOT_SENT,
        record,
        message="Another transfer from this wallet used the same sequence number; this one was "
        "not sent.",
    )
