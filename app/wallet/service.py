"""``WalletService``: the wallet feature for the UI and the CLI, composed from vaults, the chain,
withdrawals, history and the node wallet; publishes ``Observable[WalletState]``.

Unlocking keeps only the vault's data key in memory (never the phrase); keys are derived for the
one call that signs. The wallet locks itself after ``auto_lock_minutes`` without a command.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Final

from app.core.atomic import write_private_atomic
from app.core.money import Nanoton
from app.core.observable import Observable
from app.core.paths import AppPaths
from app.core.settings import WalletSettings
from app.wallet.chain import ChainBackend, ChainError, ChainOffline
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion, display_address
from app.wallet.history import HistoryCursor, HistoryPage, WalletHistory, history_csv
from app.wallet.keyring_cache import KeyringCache
from app.wallet.mnemonic import KeyPair, Mnemonic, generate_mnemonic, parse_mnemonic
from app.wallet.node_wallet import NodeWallet, NodeWalletStatus
from app.wallet.pending import BroadcastState, PendingSendError, PendingSendStore, SendStatus
from app.wallet.vault import (
    DEFAULT_KDF,
    KDF_TIMEOUT_S,
    VAULT_SUFFIX,
    KdfParams,
    VaultError,
    WalletVault,
    vault_path,
)
from app.wallet.vault_format import DataKey
from app.wallet.wallet_state import (
    NoWalletError,
    PendingView,
    WalletLockedError,
    WalletState,
    WalletSummary,
    WithdrawalReceipt,
)
from app.wallet.withdrawals import (
    WarningKind,
    WithdrawalPlan,
    WithdrawalRequest,
    Withdrawals,
)

_log = logging.getLogger(__name__)

DEFAULT_REFRESH_S: Final = 30.0
# Destinations seen in this many recent transactions feed the look-alike / first-send checks.
_KNOWN_DESTINATIONS_TXS: Final = 64


class WalletService:
    """One network's wallets. ``start()`` begins the refresh timer; ``aclose()`` ends it."""

    def __init__(
        self,
        paths: AppPaths,
        network: str,
        chain: ChainBackend,
        *,
        settings: WalletSettings | None = None,
        keyring: KeyringCache | None = None,
        kdf: KdfParams = DEFAULT_KDF,
        refresh_interval_s: float | None = DEFAULT_REFRESH_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._paths = paths
        self.network = TonNetwork.for_setting(network)
        self._chain = chain
        self._settings = settings or WalletSettings()
        self._keyring = keyring
        self._kdf = kdf
        self._interval = refresh_interval_s
        self._monotonic = monotonic
        self._pending = PendingSendStore(paths.wallets_dir / "pending" / network)
        self.node_wallet = NodeWallet(paths.wallets_dir, self.network, chain, kdf=kdf)
        self.state: Observable[WalletState] = Observable(WalletState())
        self._key: DataKey | None = None
        # The node wallet is a hot wallet for gas: once unlocked for earning, its keys stay in
        # memory until the service closes (the user's own wallet still locks when idle).
        self.node_keys: KeyPair | None = None
        self._last_used = monotonic()
        self._refresh_task: asyncio.Task[WalletState] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        # Messages refused as "seqno already used": re-sending them is pointless, only checking.
        self._never_rebroadcast: set[bytes] = set()
        self._closing = False

    @property
    def vault_dir(self) -> Path:
        """Where this network's wallet vaults are kept."""
        return self._paths.wallets_dir

    @property
    def chain(self) -> ChainBackend:
        """The backend this service reads and sends through (the devnet faucet needs it)."""
        return self._chain

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await self._chain.start()
        self._unsubscribe = self._chain.online.subscribe(
            lambda online: self._publish(offline=not online)
        )
        self._load_wallets(self._settings.active_wallet)
        self._closing = False
        if self._interval is not None:
            self._loop_task = asyncio.create_task(self._refresh_loop(self._interval))

    async def aclose(self) -> None:
        self._closing = True
        for task in (self._loop_task, self._refresh_task):
            if task is not None:
                await _stop(task)
        self._loop_task = self._refresh_task = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.lock()
        self.node_keys = None
        await self._chain.aclose()

    async def _refresh_loop(self, interval: float) -> None:
        while not self._closing:
            self.lock_if_idle()
            try:
                await self.refresh()
            except Exception:  # keep refreshing; chain errors are already in the state
                _log.exception("wallet refresh failed")
            await asyncio.sleep(interval)

    # -- wallets ----------------------------------------------------------------------------

    def wallets(self) -> tuple[WalletSummary, ...]:
        """This network's wallets (the node wallet is not one of them)."""
        out: list[WalletSummary] = []
        for path in sorted(self._paths.wallets_dir.glob(f"*{VAULT_SUFFIX}")):
            public = WalletVault.load(path).public
            if public.network is not self.network:
                continue
            contract = WalletContract(public.wallet_version, self.network, public.public_key)
            out.append(
                WalletSummary(
                    public.wallet_id,
                    contract.display_address,
                    contract.raw_address,
                    public.wallet_version,
                    self.network,
                    public.public_key,
                )
            )
        return tuple(out)

    def _load_wallets(
        self, preferred: str = "", wallets: tuple[WalletSummary, ...] | None = None
    ) -> None:
        wallets = self.wallets() if wallets is None else wallets
        current = self.state.value.active
        wanted = preferred or (current.wallet_id if current else "")
        active = next(
            (w for w in wallets if w.wallet_id == wanted), wallets[0] if wallets else None
        )
        if active != current:
            self._key = None
            self.state.set(WalletState(wallets=wallets, active=active, offline=self._offline()))
        else:
            self._publish(wallets=wallets)

    def select(self, wallet_id: str) -> WalletSummary:
        """Make ``wallet_id`` the active wallet (locks the previous one)."""
        wallets = self.wallets()
        match = next((w for w in wallets if w.wallet_id == wallet_id), None)
        if match is None:
            raise NoWalletError(f"There is no wallet '{wallet_id}' on this network.")
        self._load_wallets(wallet_id, wallets)
        return match

    def active(self) -> WalletSummary:
        active = self.state.value.active
        if active is None:
            raise NoWalletError(
                "There is no wallet on this network yet.",
                hint="Create one or import your recovery phrase.",
            )
        return active

    async def create(
        self, password: str, *, version: WalletVersion | None = None
    ) -> tuple[WalletSummary, Mnemonic]:
        """A new wallet; the returned phrase must be shown to the user once and then dropped."""
        mnemonic = await asyncio.wait_for(asyncio.to_thread(generate_mnemonic), KDF_TIMEOUT_S)
        summary = await self._store(mnemonic, password, version)
        return summary, mnemonic

    async def import_(
        self, phrase: str, password: str, *, version: WalletVersion | None = None
    ) -> WalletSummary:
        """Restore a wallet from its 24-word phrase (checked strictly; see ``parse_mnemonic``)."""
        return await self._store(parse_mnemonic(phrase), password, version)

    async def _store(
        self, mnemonic: Mnemonic, password: str, version: WalletVersion | None
    ) -> WalletSummary:
        chosen = version or WalletVersion(self._settings.wallet_version)

        def create() -> WalletVault:
            self._paths.wallets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            return WalletVault.create(
                self._paths.wallets_dir,
                mnemonic,
                password,
                version=chosen,
                network=self.network,
                kdf=self._kdf,
            )

        vault = await asyncio.wait_for(asyncio.to_thread(create), KDF_TIMEOUT_S)
        return self.select(vault.public.wallet_id)

    # -- locking ----------------------------------------------------------------------------

    def _vault(self) -> WalletVault:
        active = self.active()
        return WalletVault.load(vault_path(self._paths.wallets_dir, active.wallet_id))

    async def unlock(self, password: str | None = None, *, remember: bool = False) -> None:
        """Unlock with ``password``, or (None) with the data key remembered in the OS keyring."""
        vault, wallet_id = self._vault(), self.active().wallet_id
        if password is None:
            key = await self._keyring.load(wallet_id) if self._keyring else None
            if key is None:
                raise WalletLockedError()
        else:
            key = await vault.unlock_async(password)
        await vault.keypair_async(key)  # proves the key opens this vault before keeping it
        if remember and self._keyring is not None:
            await self._keyring.save(wallet_id, key)
        self._key = key
        if password is not None and self.node_keys is None and self.node_wallet.vault():
            # The node wallet is created with the user's password: one unlock serves both.
            with contextlib.suppress(VaultError):
                self.node_keys = await self.node_wallet.keypair(password)
        self._touch()
        self._publish(locked=False)

    def lock(self) -> None:
        self._key = None
        self._publish(locked=True)

    def lock_if_idle(self) -> bool:
        """Lock when no command used the keys for ``auto_lock_minutes``; True if it locked."""
        idle = self._monotonic() - self._last_used
        if self._key is not None and idle >= self._settings.auto_lock_minutes * 60:
            self.lock()
            return True
        return False

    def _touch(self) -> None:
        self._last_used = self._monotonic()

    # -- refreshing -------------------------------------------------------------------------

    async def refresh(self) -> WalletState:
        """Re-read balances and the pending send; a newer refresh supersedes a running one."""
        if self._refresh_task is not None and not self._refresh_task.done():
            self._refresh_task.cancel()
        task = asyncio.create_task(self._refresh_once())
        self._refresh_task = task
        while True:
            try:
                return await task
            except asyncio.CancelledError:
                if _caller_cancelled():
                    raise
                newer = self._superseding(task)
                if newer is None:
                    raise
                task = newer  # superseded: answer with the newer refresh's result

    def _superseding(self, task: asyncio.Task[WalletState]) -> asyncio.Task[WalletState] | None:
        newer = self._refresh_task
        return newer if newer is not None and newer is not task else None

    async def _refresh_once(self) -> WalletState:
        active = self.state.value.active
        if active is None:
            return self.state.value
        try:
            account = await self._chain.get_account_state(active.raw_address)
            node = await self.node_wallet.status()
            pending = await self._settle_pending(active)
        except ChainOffline:
            self._publish(offline=True)
            return self.state.value
        except (ChainError, PendingSendError) as exc:
            self._publish(refresh_error=exc.message)
            return self.state.value
        self._publish(
            balance=account.balance,
            deployed=account.status == "active",
            node_wallet=node,
            pending_send=pending,
            offline=False,
            refresh_error=None,
            last_refresh=int(time.time()),
        )
        return self.state.value

    async def _settle_pending(self, active: WalletSummary) -> PendingView | None:
        record = self._pending.get(active.wallet_id)
        if record is None:
            return None
        withdrawals = self._withdrawals(active)
        resend = record.state is BroadcastState.SIGNED
        if resend and record.message_hash not in self._never_rebroadcast:
            outcome = await withdrawals.reconcile()  # same BOC again while it is valid
        else:
            outcome = await withdrawals.check(record)
        if outcome is None or self._pending.get(active.wallet_id) is None:
            return None
        return PendingView.of(outcome.record)

    # -- sending ----------------------------------------------------------------------------

    def _withdrawals(self, active: WalletSummary) -> Withdrawals:
        contract = WalletContract(active.version, self.network, active.public_key)
        return Withdrawals(
            self._chain,
            contract,
            active.wallet_id,
            self._pending,
            large_first_send=Nanoton(self._settings.large_first_send_nanoton),
        )

    async def plan_withdrawal(self, request: WithdrawalRequest) -> WithdrawalPlan:
        """Check a withdrawal (address, amount, balance, fee, warnings); works while locked."""
        active = self.active()
        known = await self._known_destinations(active)
        return await self._withdrawals(active).plan(request, known_destinations=known)

    async def withdraw(
        self,
        request: WithdrawalRequest,
        *,
        confirmed: Collection[WarningKind] = (),
        plan: WithdrawalPlan | None = None,
    ) -> WithdrawalReceipt:
        """Plan (unless given), sign, persist and broadcast; warnings need confirming."""
        if self._key is None:
            raise WalletLockedError()
        active = self.active()
        chosen = plan or await self.plan_withdrawal(request)
        keys = await self._vault().keypair_async(self._key)
        self._touch()
        withdrawals = self._withdrawals(active)
        outcome = await withdrawals.execute(chosen, keys, confirmed=confirmed)
        if outcome.status is SendStatus.PENDING and outcome.record.state is BroadcastState.SIGNED:
            self._never_rebroadcast.add(outcome.record.message_hash)
        elif outcome.status is SendStatus.PENDING:
            # Fast networks (and the local one) may have the transaction already.
            with contextlib.suppress(ChainError):
                outcome = await withdrawals.check(outcome.record)
        receipt = WithdrawalReceipt.of(outcome, chosen)
        await self.refresh()
        return receipt

    async def top_up_node_wallet(
        self, amount: Nanoton | None = None, *, confirmed: Collection[WarningKind] = ()
    ) -> WithdrawalReceipt:
        """Send gas money from the active wallet to the node wallet (default: the shortfall)."""
        status = await self.node_wallet.status()
        shortfall = status.shortfall if status else Nanoton(0)
        request = self.node_wallet.top_up_request(amount, shortfall=shortfall)
        return await self.withdraw(request, confirmed=confirmed)

    async def create_node_wallet(self, password: str) -> NodeWalletStatus | None:
        await self.node_wallet.create(password)
        return (await self.refresh()).node_wallet

    async def unlock_node_wallet(self, password: str) -> KeyPair:
        """Unlock the node wallet for cash-outs (kept unlocked until the service closes)."""
        self.node_keys = await self.node_wallet.keypair(password)
        return self.node_keys

    async def _known_destinations(self, active: WalletSummary) -> list[str]:
        txs = await self._chain.get_transactions(active.raw_address, _KNOWN_DESTINATIONS_TXS)
        return [out.destination for tx in txs for out in tx.out_msgs]

    # -- history ----------------------------------------------------------------------------

    async def history(self, cursor: HistoryCursor | None = None, *, limit: int = 20) -> HistoryPage:
        return await WalletHistory(self._chain, self.active().raw_address).page(cursor, limit=limit)

    async def export_csv(self, path: Path) -> int:
        """Write the whole history to ``path`` (private file); returns the number of rows."""
        active = self.active()
        entries = await WalletHistory(self._chain, active.raw_address).entries()
        network = self.network
        text = history_csv(entries, show_address=lambda raw: display_address(raw, network))
        await asyncio.to_thread(write_private_atomic, path, text.encode("utf-8"))
        return len(entries)

    # -- state ------------------------------------------------------------------------------

    def _offline(self) -> bool:
        return not self._chain.online.value

    def _publish(self, **changes: object) -> None:
        self.state.set(dataclasses.replace(self.state.value, **changes))  # type: ignore[arg-type]


async def _stop(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait for it; cancels again if a cancellation got lost (Python 3.11's
    ``wait_for`` can swallow one when the awaited call finishes at the same moment)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)


def _caller_cancelled() -> bool:
    """True when the running task itself was cancelled (not just a task it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
