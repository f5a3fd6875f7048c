"""Wallet contracts (V5R1 default, V4R2): networks, wallet ids, state_init and every address form.

Everything here is offline and deterministic: the address is the hash of the contract's initial
code and data, so it is known before the wallet is ever deployed.
"""

# pytoniq-core ships py.typed but leaves most methods unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cached_property
from typing import Final

from pytoniq.contract.wallets.wallet import WALLET_V4_R2_CODE
from pytoniq.contract.wallets.wallet_v5 import WALLET_V5_R1_CODE
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.account import StateInit
from pytoniq_core.tlb.custom.wallet import WalletV4Data, WalletV5R1Data

# The V4 wallet id is network-independent (so V4 messages can be replayed across networks).
V4R2_BASE_WALLET_ID: Final = 698_983_191


class WalletVersion(enum.StrEnum):
    """Wallet contract versions this app creates and signs for (values match the settings)."""

    V5R1 = "v5r1"
    V4R2 = "v4r2"


class TonNetwork(enum.Enum):
    """A TON network as the wallet sees it: its global id (config param 19) and test flag."""

    MAINNET = (-239, False)
    TESTNET = (-3, True)

    def __init__(self, global_id: int, is_testnet: bool) -> None:
        self.global_id = global_id
        self.is_testnet = is_testnet

    @classmethod
    def for_setting(cls, network: str) -> TonNetwork:
        """Map the ``general.network`` setting: only ``mainnet`` holds real money.

        The local devnet and testnet both use testnet ids and addresses, so nothing built for
        them is valid on mainnet.
        """
        if network == "mainnet":
            return cls.MAINNET
        if network in ("testnet", "devnet"):
            return cls.TESTNET
        raise ValueError(f"unknown network {network!r}")


@dataclass(frozen=True, slots=True)
class AddressForms:
    """One account's address in every common rendering."""

    raw: str
    mainnet_bounceable: str
    mainnet_non_bounceable: str
    testnet_bounceable: str
    testnet_non_bounceable: str

    def display(self, network: TonNetwork) -> str:
        """What the app shows for a wallet: non-bounceable, with the network's test flag."""
        if network.is_testnet:
            return self.testnet_non_bounceable
        return self.mainnet_non_bounceable


def address_forms(address: Address) -> AddressForms:
    return AddressForms(
        raw=address.to_str(is_user_friendly=False),
        mainnet_bounceable=address.to_str(is_bounceable=True),
        mainnet_non_bounceable=address.to_str(is_bounceable=False),
        testnet_bounceable=address.to_str(is_bounceable=True, is_test_only=True),
        testnet_non_bounceable=address.to_str(is_bounceable=False, is_test_only=True),
    )


def display_address(address: str, network: TonNetwork) -> str:
    """How the app shows any account (``address`` in a form pytoniq reads, e.g. raw)."""
    return address_forms(Address(address)).display(network)


def v5r1_wallet_id(network: TonNetwork, workchain: int = 0, subwallet: int = 0) -> int:
    """V5R1 wallet id: network global id XOR the client context (flag, workchain, version 0)."""
    context = (1 << 31) | ((workchain & 0xFF) << 23) | (subwallet & 0x7FFF)
    return (context ^ network.global_id) & 0xFFFFFFFF


@dataclass(frozen=True)
class WalletContract:
    """A user wallet contract identified by version, network, public key and workchain."""

    version: WalletVersion
    network: TonNetwork
    public_key: bytes
    workchain: int = 0

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise ValueError("a wallet public key is 32 bytes")
        if self.workchain not in (0, -1):
            raise ValueError("wallets live in workchain 0 or -1")

    @cached_property
    def wallet_id(self) -> int:
        if self.version is WalletVersion.V4R2:
            return V4R2_BASE_WALLET_ID + self.workchain
        return v5r1_wallet_id(self.network, self.workchain)

    @cached_property
    def code(self) -> Cell:
        return WALLET_V4_R2_CODE if self.version is WalletVersion.V4R2 else WALLET_V5_R1_CODE

    @cached_property
    def initial_data(self) -> Cell:
        data: WalletV4Data | WalletV5R1Data
        if self.version is WalletVersion.V4R2:
            data = WalletV4Data(
                seqno=0, wallet_id=self.wallet_id, public_key=self.public_key, plugins=None
            )
        else:
            data = WalletV5R1Data(
                seqno=0,
                wallet_id=self.wallet_id,
                public_key=self.public_key,
                extensions=None,
                is_signature_allowed=True,
            )
        cell: Cell = data.serialize()
        return cell

    @cached_property
    def state_init(self) -> StateInit:
        return StateInit(code=self.code, data=self.initial_data)

    @cached_property
    def address(self) -> Address:
        return Address((self.workchain, self.state_init.serialize().hash))

    @cached_property
    def forms(self) -> AddressForms:
        return address_forms(self.address)

    @property
    def display_address(self) -> str:
        """The address users copy: non-bounceable with this network's flag (``UQ…``/``0Q…``)."""
        return self.forms.display(self.network)

    @property
    def raw_address(self) -> str:
        return self.forms.raw
