"""Getting the wallets ready to earn: the user's own wallet (where earnings are paid), the node
wallet (gas for cash-outs) and, on the local network, gas from its faucet.

Earnings always go to a wallet the user owns: on the local network a missing wallet is created
for them (and they are told so), never a placeholder address.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from app.core.errors import UserFacingError
from app.core.money import Nanoton
from app.wallet.node_wallet import NODE_WALLET_MINIMUM
from app.wallet.service import WalletService
from app.wallet.simulated_chain import SimulatedChain
from app.wallet.wallet_state import WalletSummary

#: What the local network's faucet gives a new node wallet: the minimum plus room for cash-outs.
DEVNET_NODE_GAS: Final = Nanoton(NODE_WALLET_MINIMUM + 1_000_000_000)


class PasswordNeededError(UserFacingError):
    """A wallet must be created or unlocked, and no password was given."""


@dataclass(frozen=True, slots=True)
class WalletSetup:
    """What :func:`prepare_earning_wallets` found and did, to tell the user."""

    owner: WalletSummary | None
    created: bool
    vault_dir: Path
    node_address: str | None
    node_gas_added: Nanoton
    node_unlocked: bool

    def lines(self) -> list[str]:
        out: list[str] = []
        if self.owner is not None and self.created:
            out.append(
                f"Created a wallet for your earnings: {self.owner.address} (vault in "
                f"{self.vault_dir}; it holds local-network test TON only)."
            )
        if self.node_gas_added:
            out.append(f"The local network's faucet gave the node wallet {self.node_address} gas.")
        if self.node_address is not None and not self.node_unlocked:
            out.append(
                "Cash-outs wait until the node wallet is unlocked: pass --password-stdin or set "
                "COCOON_PROVIDER_PASSWORD."
            )
        return out


async def prepare_earning_wallets(
    wallet: WalletService,
    *,
    password: Callable[[], str | None],
    faucet: SimulatedChain | None,
    create_if_missing: bool,
) -> WalletSetup:
    """Create what is missing, unlock the node wallet, and on the local network (``faucet``)
    create and fund the node wallet. ``password`` is asked only when something needs it."""
    created = False
    asked: list[str | None] = []

    def secret() -> str | None:
        if not asked:
            asked.append(password())
        return asked[0]

    if not wallet.wallets() and create_if_missing:
        if secret() is None:
            raise PasswordNeededError(
                "The local network pays your earnings into a wallet of yours, and there is none.",
                hint="Give a password for it with --password-stdin (or COCOON_PROVIDER_PASSWORD), "
                "or create one first: cocoon-provider wallet create.",
            )
        await wallet.create(_given(secret()))
        created = True
    owner = wallet.state.value.active
    wants_node = wallet.node_wallet.vault() is not None or faucet is not None
    if owner is not None and wants_node and secret() is not None:
        if wallet.node_wallet.vault() is None:
            await wallet.node_wallet.create(_given(secret()))
        await wallet.unlock(_given(secret()))
    contract = wallet.node_wallet.contract()
    gas_added = await fund_node_wallet(wallet, faucet) if faucet is not None else Nanoton(0)
    return WalletSetup(
        owner=owner,
        created=created,
        vault_dir=wallet.vault_dir,
        node_address=contract.display_address if contract is not None else None,
        node_gas_added=gas_added,
        node_unlocked=wallet.node_keys is not None,
    )


async def fund_node_wallet(wallet: WalletService, faucet: SimulatedChain) -> Nanoton:
    """On the local network, top the node wallet up to :data:`DEVNET_NODE_GAS` from the faucet
    when it holds less than the minimum; what was added (0: nothing to do)."""
    contract = wallet.node_wallet.contract()
    if contract is None:
        return Nanoton(0)
    balance = (await faucet.get_account_state(contract.raw_address)).balance
    if balance >= NODE_WALLET_MINIMUM:
        return Nanoton(0)
    added = Nanoton(DEVNET_NODE_GAS - balance)
    await faucet.mint(contract.raw_address, added, comment="devnet faucet: node gas")
    return added


def _given(password: str | None) -> str:
    if password is None:  # pragma: no cover - callers check first
        raise PasswordNeededError("A wallet password is needed.")
    return password
