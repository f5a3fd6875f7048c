"""Messages from the node wallet to COCOON contracts (a worker contract's deploy, the vouchers
it cashes): signed here, then persisted, broadcast and resolved exactly like a withdrawal
(:class:`~app.wallet.withdrawals.Withdrawals`, docs/wallet.md §5), so a crash never sends twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from pytoniq_core.boc.address import Address
from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.account import StateInit

from app.core.money import Nanoton
from app.wallet.chain import AccountState, ChainBackend, ChainTransaction, wallet_seqno
from app.wallet.contracts import WalletContract
from app.wallet.mnemonic import KeyPair
from app.wallet.pending import PendingSend, PendingSendStore, SendOutcome
from app.wallet.transfer import SendMode, TransferOrder, sign_transfer
from app.wallet.withdrawals import TTL_S, Withdrawals

#: The pending-send slot of the node wallet (user wallets use their vault ids).
NODE_WALLET_ID: Final = "node-wallet"


@dataclass(frozen=True, slots=True)
class ContractMessage:
    """One internal message to a contract: ``value`` attached (fees paid on top), a body cell,
    and the contract's StateInit when the message also deploys it."""

    destination: str  # raw "wc:hex"
    value: Nanoton
    body: Cell
    state_init: StateInit | None = None
    bounce: bool = True


class NodeSender:
    """Sends :class:`ContractMessage` s from the node wallet, one at a time (its seqno)."""

    def __init__(
        self,
        chain: ChainBackend,
        contract: WalletContract,
        keys: KeyPair,
        pending: PendingSendStore,
    ) -> None:
        if keys.public_key != contract.public_key:
            raise ValueError("the keys do not belong to the node wallet")
        self._chain = chain
        self._contract = contract
        self._keys = keys
        self._pending = pending
        self._sends = Withdrawals(chain, contract, NODE_WALLET_ID, pending)

    @property
    def chain(self) -> ChainBackend:
        return self._chain

    @property
    def address(self) -> str:
        """The node wallet's raw address."""
        return self._contract.raw_address

    def open_send(self) -> PendingSend | None:
        """The send not resolved yet, if any (nothing new goes out until it is)."""
        return self._pending.get(NODE_WALLET_ID)

    async def balance(self) -> Nanoton:
        return (await self._chain.get_account_state(self.address)).balance

    async def account(self, address: str) -> AccountState:
        return await self._chain.get_account_state(address)

    async def sign(self, message: ContractMessage) -> PendingSend:
        """Sign for the wallet's current seqno (nothing is stored or sent yet)."""
        wallet = await self._chain.get_account_state(self.address)
        now = await self._chain.get_server_time()
        order = TransferOrder(
            Address(message.destination),
            message.value,
            message.bounce,
            SendMode.PAY_FEES_SEPARATELY,
            None,
            body=message.body,
            state_init=message.state_init,
        )
        signed = sign_transfer(
            self._contract,
            self._keys,
            order,
            seqno=wallet_seqno(wallet),
            valid_until=now + TTL_S,
            deployed=wallet.status == "active",
        )
        record = PendingSend(
            wallet_id=NODE_WALLET_ID,
            wallet_address=self.address,
            seqno=signed.seqno,
            valid_until=signed.valid_until,
            boc=signed.boc,
            message_hash=signed.message_hash,
            normalized_hash=signed.normalized_hash,
            destination=message.destination,
            destination_raw=message.destination,
            amount=message.value,
            send_all=False,
            comment=None,
            created_at=int(time.time()),
        )
        return record

    async def submit(self, record: PendingSend) -> SendOutcome:
        """Persist, then broadcast, a record from :meth:`sign`; PENDING until :meth:`check`."""
        return await self._sends.send_signed(record)

    async def transactions(self, address: str, limit: int = 32) -> list[ChainTransaction]:
        """The newest transactions of ``address`` (newest first)."""
        return await self._chain.get_transactions(address, limit)

    async def check(self, record: PendingSend) -> SendOutcome:
        return await self._sends.check(record)

    async def reconcile(self) -> SendOutcome | None:
        """After a restart: resolve (or re-broadcast, while valid) the send left open."""
        return await self._sends.reconcile()
