"""The node wallet (gas for the COCOON worker) and the owner address (where earnings go).

COCOON workers pay gas from a separate hot wallet whose Ed25519 seed is the worker's
``node_wallet_key``; it must hold at least 2.1 TON before the worker starts. Its recovery phrase
lives in its own vault (same format and password rules as the user's wallets) in
``wallets/node/``, so it never shows up as a user wallet. Earnings go to the owner address: the
app's own wallet unless the user sets another address.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pytoniq_core.crypto.keys import mnemonic_to_private_key

from app.core.errors import UserFacingError
from app.core.money import Nanoton, format_ton
from app.wallet.addresses import AddressWarning, parse_address
from app.wallet.chain import ChainBackend, raw_address
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair, generate_mnemonic
from app.wallet.vault import (
    DEFAULT_KDF,
    KDF_TIMEOUT_S,
    VAULT_SUFFIX,
    KdfParams,
    VaultError,
    WalletVault,
)
from app.wallet.vault_format import DataKey
from app.wallet.withdrawals import WithdrawalRequest

# BaseRunner::min_wallet_balance(): the reference runner waits for this much gas money.
NODE_WALLET_MINIMUM: Final = Nanoton(2_100_000_000)
NODE_DIR_NAME: Final = "node"
TOP_UP_COMMENT: Final = "cocoon-provider: node wallet gas"


class OwnerAddressError(UserFacingError):
    """An owner address that earnings cannot be paid to."""


@dataclass(frozen=True, slots=True)
class NodeWalletStatus:
    """The node wallet's balance against the minimum the worker needs."""

    address: str
    balance: Nanoton
    minimum: Nanoton = NODE_WALLET_MINIMUM

    @property
    def shortfall(self) -> Nanoton:
        return Nanoton(max(0, self.minimum - self.balance))

    @property
    def ready(self) -> bool:
        return self.balance >= self.minimum

    def describe(self) -> str:
        if self.ready:
            return f"Node wallet ready ({format_ton(self.balance, trim=True, unit=True)})."
        return (
            f"The node wallet needs {format_ton(self.shortfall, trim=True, unit=True)} more "
            f"(at least {format_ton(self.minimum, trim=True, unit=True)} for gas)."
        )


class NodeWallet:
    """Creates, finds and inspects the node wallet of one network."""

    def __init__(
        self,
        wallets_dir: Path,
        network: TonNetwork,
        chain: ChainBackend,
        *,
        kdf: KdfParams = DEFAULT_KDF,
    ) -> None:
        self._dir = wallets_dir / NODE_DIR_NAME
        self._network = network
        self._chain = chain
        self._kdf = kdf

    def vault(self) -> WalletVault | None:
        """The node wallet's vault for this network, or None when it was never created."""
        if not self._dir.is_dir():
            return None
        for path in sorted(self._dir.glob(f"*{VAULT_SUFFIX}")):
            vault = WalletVault.load(path)
            if vault.public.network is self._network:
                return vault
        return None

    def contract(self) -> WalletContract | None:
        vault = self.vault()
        if vault is None:
            return None
        return WalletContract(WalletVersion.V5R1, self._network, vault.public.public_key)

    async def create(self, password: str) -> WalletContract:
        """Make a fresh node key under ``password`` (refuses when one exists already)."""
        if self.vault() is not None:
            raise VaultError(
                "This network already has a node wallet.",
                hint="It is reused; top it up instead of creating another.",
            )

        def make() -> WalletVault:
            self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            return WalletVault.create(
                self._dir,
                generate_mnemonic(),
                password,
                version=WalletVersion.V5R1,
                network=self._network,
                kdf=self._kdf,
            )

        vault = await asyncio.wait_for(asyncio.to_thread(make), KDF_TIMEOUT_S)
        return WalletContract(WalletVersion.V5R1, self._network, vault.public.public_key)

    async def keypair(self, password: str) -> KeyPair:
        """The node wallet's keys (it signs cash-outs). Secret: keep them in memory only."""
        vault = self.vault()
        if vault is None:
            raise VaultError("There is no node wallet yet.", hint="Create it first.")
        key = await vault.unlock_async(password)
        return await vault.keypair_async(key)

    async def status(self) -> NodeWalletStatus | None:
        """Balance against the 2.1 TON minimum; None when there is no node wallet yet."""
        contract = self.contract()
        if contract is None:
            return None
        state = await self._chain.get_account_state(contract.raw_address)
        return NodeWalletStatus(contract.display_address, state.balance)

    async def node_wallet_key(self, key: DataKey) -> bytes:
        """The 32-byte Ed25519 seed the worker signs with. Secret: hand it to the worker only."""
        vault = self.vault()
        if vault is None:
            raise VaultError("There is no node wallet yet.", hint="Create it first.")

        def seed() -> bytes:
            _public, secret = mnemonic_to_private_key(list(vault.mnemonic(key).words))
            return bytes(secret[:32])

        return await asyncio.wait_for(asyncio.to_thread(seed), KDF_TIMEOUT_S)

    def top_up_request(
        self, amount: Nanoton | None = None, *, shortfall: Nanoton
    ) -> WithdrawalRequest:
        """The withdrawal from the user's wallet that tops the node wallet up.

        ``amount`` defaults to the ``shortfall`` (what is missing to reach the minimum).
        """
        contract = self.contract()
        if contract is None:
            raise VaultError("There is no node wallet yet.", hint="Create it first.")
        value = amount if amount is not None else shortfall
        if value <= 0:
            raise UserFacingError("The node wallet already holds enough for gas.")
        return WithdrawalRequest(
            destination=contract.display_address,
            amount=format_ton(value),
            comment=TOP_UP_COMMENT,
        )


def validate_owner_address(text: str, network: TonNetwork) -> str:
    """Check an owner address like a withdrawal destination; return its display form.

    Earnings are paid to whatever this says, so anything a withdrawal would only warn about
    (no checksum, mainnet address on a test network) is refused here: there is no confirmation
    step when the proxy contract pays.
    """
    parsed = parse_address(text, network)
    if AddressWarning.RAW_FORM in parsed.warnings:
        raise OwnerAddressError(
            "Use the user-friendly form of the owner address (48 characters, with a checksum).",
            hint="Copy it from your wallet app.",
        )
    if AddressWarning.MAINNET_ADDRESS_ON_TESTNET in parsed.warnings:
        raise OwnerAddressError(
            "This is a mainnet address, but earnings here are paid on a test network.",
            hint="Use the same wallet's testnet address (it starts with 0Q or kQ).",
        )
    if parsed.workchain != 0:
        raise OwnerAddressError("The owner address must be in the basechain (workchain 0).")
    return parsed.forms.display(network)


def effective_owner_address(
    setting: str, app_wallet_address: str | None, network: TonNetwork
) -> str | None:
    """The address earnings go to: the setting when set, else the app's own wallet."""
    if setting.strip():
        return validate_owner_address(setting, network)
    if app_wallet_address is None:
        return None
    return parse_address(raw_address(app_wallet_address), network).forms.display(network)
