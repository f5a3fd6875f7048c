"""``WalletViewModel``: the wallet service's state, history and commands for the Wallet page.

Widgets never hold the ``WalletService``: they observe the Qt signals below and await the
commands, which turn every :class:`UserFacingError` into a :class:`Failure` carrying the text to
show (message plus hint). Secrets pass through as arguments only; nothing here stores or logs them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from PySide6.QtCore import QObject, Signal

from app.core.errors import UserFacingError
from app.core.money import Nanoton, parse_ton
from app.core.observable import Observable, Unsubscribe
from app.core.settings import Settings
from app.wallet.addresses import AddressError, ParsedAddress, parse_address
from app.wallet.history import HistoryCursor, HistoryEntry
from app.wallet.keyring_cache import KeyringCache, KeyringStatus
from app.wallet.mnemonic import Mnemonic, MnemonicError, generate_mnemonic, parse_mnemonic
from app.wallet.node_wallet import OwnerAddressError, effective_owner_address
from app.wallet.service import WalletService
from app.wallet.vault import KDF_TIMEOUT_S
from app.wallet.wallet_state import WalletState, WithdrawalReceipt
from app.wallet.withdrawals import WarningKind, WithdrawalPlan, WithdrawalRequest

T = TypeVar("T")

HISTORY_PAGE_SIZE: Final = 20
FAUCET_AMOUNT: Final = Nanoton(10 * 10**9)
# A devnet faucet: credits nanotons to an address on the simulated chain.
Faucet = Callable[[str, Nanoton], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Failure:
    """A command that did not happen; ``text`` is what the user reads (nothing was changed)."""

    text: str


@dataclass(frozen=True, slots=True)
class HistoryView:
    """The history rows loaded so far (newest first) and whether older ones exist."""

    entries: tuple[HistoryEntry, ...] = ()
    has_more: bool = False


@dataclass(frozen=True, slots=True)
class AddressCheck:
    """A destination as typed, checked live: ``error`` or the parsed address and its notes."""

    parsed: ParsedAddress | None
    error: str = ""
    notes: tuple[str, ...] = ()


class WalletViewModel(QObject):
    """Re-emits wallet state on the Qt side and wraps the wallet's async commands for widgets.

    ``keyring`` enables "unlock without password on this computer"; ``settings`` supplies the
    owner address (earnings go there); ``faucet`` (devnet only) adds test TON.
    """

    state_changed = Signal(object)  # WalletState
    history_changed = Signal(object)  # HistoryView
    keyring_changed = Signal(object)  # KeyringStatus
    owner_changed = Signal(str)  # the owner address line

    def __init__(
        self,
        wallet: WalletService,
        *,
        keyring: KeyringCache | None = None,
        settings: Observable[Settings] | None = None,
        faucet: Faucet | None = None,
    ) -> None:
        super().__init__()
        self._wallet = wallet
        self._keyring = keyring
        self._settings = settings
        self._faucet = faucet
        self._history = HistoryView()
        self._cursor: HistoryCursor | None = None
        active = wallet.state.value.active
        self._active_id = active.wallet_id if active else None
        self._shown = wallet.state.value
        self._refreshing = 0  # commands running that reload the history themselves
        self._history_task: asyncio.Task[None] | None = None
        self._unsubscribers: list[Unsubscribe] = [wallet.state.subscribe(self._state)]
        if keyring is not None:
            self._unsubscribers.append(keyring.status.subscribe(self.keyring_changed.emit))
        if settings is not None:
            self._unsubscribers.append(settings.subscribe(lambda _s: self._emit_owner()))

    def close(self) -> None:
        """Stop observing the wallet (and cancel a background history reload)."""
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()
        if self._history_task is not None:
            self._history_task.cancel()

    async def aclose(self) -> None:
        """:meth:`close`, then wait until the background history reload has ended."""
        self.close()
        task, self._history_task = self._history_task, None
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- state ------------------------------------------------------------------------------

    @property
    def state(self) -> WalletState:
        return self._wallet.state.value

    @property
    def history(self) -> HistoryView:
        return self._history

    @property
    def is_testnet(self) -> bool:
        return self._wallet.network.is_testnet

    @property
    def has_keyring(self) -> bool:
        return self._keyring is not None

    @property
    def keyring_status(self) -> KeyringStatus | None:
        return self._keyring.status.value if self._keyring is not None else None

    @property
    def has_faucet(self) -> bool:
        return self._faucet is not None

    def owner_line(self) -> str:
        """Where earnings are paid, or why that is not known."""
        setting = self._settings.value.worker.owner_address if self._settings else ""
        active = self.state.active
        try:
            owner = effective_owner_address(
                setting, active.address if active else None, self._wallet.network
            )
        except (OwnerAddressError, AddressError) as exc:
            return f"The owner address in Settings is not usable: {exc.message}"
        if owner is None:
            return "Not set: create or import a wallet, or set one in Settings."
        if not setting.strip():
            return f"{owner} (this wallet)"
        return owner

    def display_address(self, address: str) -> str:
        """Any address (raw from the chain, or friendly) in the form users copy."""
        try:
            return parse_address(address, self._wallet.network).forms.display(self._wallet.network)
        except AddressError:
            return address

    def check_address(self, text: str) -> AddressCheck:
        """Live validation of a destination (no network): what is wrong, or what to notice."""
        try:
            parsed = parse_address(text, self._wallet.network)
        except AddressError as exc:
            return AddressCheck(None, exc.describe())
        notes = [w.value for w in parsed.warnings]
        active = self.state.active
        if active is not None and parsed.raw == active.raw_address:
            notes.append("This is this wallet's own address.")
        return AddressCheck(parsed, notes=tuple(notes))

    @staticmethod
    def check_amount(text: str) -> str:
        """Live validation of a TON amount: the problem, or "" when it parses."""
        try:
            parse_ton(text)
        except UserFacingError as exc:
            return exc.describe()
        return ""

    @staticmethod
    def phrase_problem(text: str) -> str:
        """Live check while a phrase is typed: names a finished word that is not a TON word."""
        finished = text.split()
        if text and not text[-1].isspace():
            finished = finished[:-1]  # the word being typed is not judged yet
        if not finished:
            return ""
        try:
            parse_mnemonic(" ".join(finished))
        except MnemonicError as exc:
            # Count and checksum problems only make sense for the whole phrase.
            return exc.describe() if exc.message.startswith("Word ") else ""
        return ""

    @staticmethod
    def phrase_error(text: str) -> str:
        """The whole phrase checked (count, word list, checksum, BIP-39): the problem, or ""."""
        try:
            parse_mnemonic(text)
        except MnemonicError as exc:
            return exc.describe()
        return ""

    # -- commands ---------------------------------------------------------------------------

    async def new_mnemonic(self) -> Mnemonic | Failure:
        """A fresh phrase for the create dialog; stored only by :meth:`save_new_wallet`."""
        return await self._call(
            asyncio.wait_for(asyncio.to_thread(generate_mnemonic), KDF_TIMEOUT_S)
        )

    async def save_new_wallet(self, mnemonic: Mnemonic, password: str) -> Failure | None:
        """Store a phrase the user has backed up (shown, then checked) under ``password``."""
        result = await self._call(self._wallet.import_(mnemonic.phrase(), password))
        return result if isinstance(result, Failure) else None

    async def import_wallet(self, phrase: str, password: str) -> Failure | None:
        result = await self._call(self._wallet.import_(phrase, password))
        if isinstance(result, Failure):
            return result
        await self.refresh()
        return None

    async def unlock(self, password: str, *, remember: bool = False) -> Failure | None:
        result = await self._call(self._wallet.unlock(password, remember=remember))
        if isinstance(result, Failure):
            return result
        await self.refresh()
        return None

    async def unlock_saved(self) -> Failure | None:
        """Unlock with the key remembered in the OS keyring (no password)."""
        result = await self._call(self._wallet.unlock(None))
        if isinstance(result, Failure):
            status = self.keyring_status
            if status is not None and status.available is False:
                return Failure(status.message)
            return Failure("No saved key on this computer: unlock with your password.")
        await self.refresh()
        return None

    def lock(self) -> None:
        self._wallet.lock()

    async def refresh(self) -> Failure | None:
        """Re-read balances and reload the newest history page."""
        if self.state.active is None:
            return None
        self._refreshing += 1
        try:
            result = await self._call(self._wallet.refresh())
            if isinstance(result, Failure):
                return result
            return await self.reload_history()
        finally:
            self._refreshing -= 1

    async def reload_history(self) -> Failure | None:
        page = await self._call(self._wallet.history(limit=HISTORY_PAGE_SIZE))
        if isinstance(page, Failure):
            return page
        self._cursor = page.next_cursor
        self._set_history(HistoryView(page.entries, page.next_cursor is not None))
        return None

    async def load_more_history(self) -> Failure | None:
        if self._cursor is None:
            return None
        page = await self._call(self._wallet.history(self._cursor, limit=HISTORY_PAGE_SIZE))
        if isinstance(page, Failure):
            return page
        self._cursor = page.next_cursor
        entries = self._history.entries + page.entries
        self._set_history(HistoryView(entries, page.next_cursor is not None))
        return None

    async def export_csv(self, path: Path) -> int | Failure:
        return await self._call(self._wallet.export_csv(path))

    async def plan_withdrawal(self, request: WithdrawalRequest) -> WithdrawalPlan | Failure:
        return await self._call(self._wallet.plan_withdrawal(request))

    async def withdraw(
        self, plan: WithdrawalPlan, request: WithdrawalRequest, confirmed: frozenset[WarningKind]
    ) -> WithdrawalReceipt | Failure:
        self._refreshing += 1  # the withdrawal refreshes; its history reload follows below
        try:
            receipt = await self._call(
                self._wallet.withdraw(request, confirmed=confirmed, plan=plan)
            )
            await self.reload_history()
        finally:
            self._refreshing -= 1
        return receipt

    def top_up_request(self) -> WithdrawalRequest | Failure:
        """The withdrawal that brings the node wallet up to its minimum (reviewed like any)."""
        node = self.state.node_wallet
        try:
            return self._wallet.node_wallet.top_up_request(
                shortfall=node.shortfall if node else Nanoton(0)
            )
        except UserFacingError as exc:
            return Failure(exc.describe())

    async def create_node_wallet(self, password: str) -> Failure | None:
        result = await self._call(self._wallet.create_node_wallet(password))
        return result if isinstance(result, Failure) else None

    async def faucet(self, amount: Nanoton = FAUCET_AMOUNT) -> Failure | None:
        """Devnet only: add test TON to the active wallet, then refresh."""
        active = self.state.active
        if self._faucet is None or active is None:
            return Failure("Test TON is only available on the local test network.")
        result = await self._call(self._faucet(active.raw_address, amount))
        if isinstance(result, Failure):
            return result
        return await self.refresh()

    # -- plumbing ---------------------------------------------------------------------------

    @staticmethod
    async def _call(work: Awaitable[T]) -> T | Failure:
        try:
            return await work
        except TimeoutError:
            return Failure("The wallet did not answer in time. Try again.")
        except UserFacingError as exc:
            return Failure(exc.describe())

    def _state(self, state: WalletState) -> None:
        active_id = state.active.wallet_id if state.active else None
        if active_id != self._active_id:
            # Another wallet (or none): the rows loaded so far belong to the previous one.
            self._active_id = active_id
            self._cursor = None
            if self._history != HistoryView():
                self._set_history(HistoryView())
        previous, self._shown = self._shown, state
        moved = (state.balance, state.pending_send) != (previous.balance, previous.pending_send)
        if moved and state.active is not None and not self._refreshing:
            self._reload_in_background()  # e.g. earnings seen by the service's refresh timer
        self.state_changed.emit(state)
        self._emit_owner()

    def _reload_in_background(self) -> None:
        if self._history_task is not None and not self._history_task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (a synchronous caller): the next refresh reloads it
        self._history_task = loop.create_task(self._reload_quietly())

    async def _reload_quietly(self) -> None:
        # A failure here is not the user's action: the state already says offline/refresh error.
        await self.reload_history()

    def _set_history(self, view: HistoryView) -> None:
        self._history = view
        self.history_changed.emit(view)

    def _emit_owner(self) -> None:
        self.owner_changed.emit(self.owner_line())
