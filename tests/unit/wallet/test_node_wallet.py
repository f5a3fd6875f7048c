"""Node wallet (gas key, 2.1 TON minimum, top-up request) and owner-address validation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nacl.signing
import pytest

from app.core.errors import UserFacingError
from app.core.money import Nanoton
from app.wallet.addresses import AddressError
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair
from app.wallet.node_wallet import (
    NODE_WALLET_MINIMUM,
    TOP_UP_COMMENT,
    NodeWallet,
    NodeWalletStatus,
    OwnerAddressError,
    effective_owner_address,
    validate_owner_address,
)
from app.wallet.simulated_chain import SimulatedChain
from app.wallet.vault import KdfParams, VaultError, WrongPasswordError

PASSWORD = "node wallet password"
RAW = "0:109746adfca1d28e0d116665e28ea469510fb27a0ab308b80c63351050e1443e"
MAINNET_UQ = "UQAQl0at_KHSjg0RZmXijqRpUQ-yegqzCLgMYzUQUOFEPrpz"
TESTNET_0Q = "0QAQl0at_KHSjg0RZmXijqRpUQ-yegqzCLgMYzUQUOFEPgH5"
TESTNET_KQ = "kQAQl0at_KHSjg0RZmXijqRpUQ-yegqzCLgMYzUQUOFEPlw8"


@pytest.fixture
async def chain() -> AsyncIterator[SimulatedChain]:
    backend = SimulatedChain()
    yield backend
    await backend.aclose()


@pytest.fixture
def node(tmp_path: Path, chain: SimulatedChain, fast_kdf: KdfParams) -> NodeWallet:
    return NodeWallet(tmp_path / "wallets", TonNetwork.TESTNET, chain, kdf=fast_kdf)


async def test_create_status_and_key(node: NodeWallet, chain: SimulatedChain) -> None:
    assert node.vault() is None
    assert node.contract() is None
    assert await node.status() is None
    contract = await node.create(PASSWORD)
    assert node.contract() == contract
    status = await node.status()
    assert status == NodeWalletStatus(contract.display_address, Nanoton(0))
    assert (status.shortfall, status.ready) == (NODE_WALLET_MINIMUM, False)
    assert "2.1 TON" in status.describe()
    await chain.mint(contract.raw_address, NODE_WALLET_MINIMUM)
    ready = await node.status()
    assert ready is not None
    assert (ready.ready, ready.shortfall) == (True, 0)
    with pytest.raises(VaultError, match="already has a node wallet"):
        await node.create(PASSWORD)

    vault = node.vault()
    assert vault is not None
    with pytest.raises(WrongPasswordError):
        vault.unlock("not the password")
    seed = await node.node_wallet_key(vault.unlock(PASSWORD))
    assert len(seed) == 32
    assert bytes(nacl.signing.SigningKey(seed).verify_key) == contract.public_key
    assert seed.hex() not in repr(vault)


async def test_node_wallets_are_per_network(
    tmp_path: Path, chain: SimulatedChain, fast_kdf: KdfParams
) -> None:
    testnet = NodeWallet(tmp_path, TonNetwork.TESTNET, chain, kdf=fast_kdf)
    mainnet = NodeWallet(tmp_path, TonNetwork.MAINNET, chain, kdf=fast_kdf)
    await testnet.create(PASSWORD)
    assert mainnet.vault() is None
    created = await mainnet.create(PASSWORD)
    assert mainnet.contract() == created
    assert testnet.contract() != created


async def test_top_up_request(node: NodeWallet) -> None:
    with pytest.raises(VaultError, match="no node wallet"):
        node.top_up_request(shortfall=NODE_WALLET_MINIMUM)
    with pytest.raises(VaultError, match="no node wallet"):
        await node.node_wallet_key(None)  # type: ignore[arg-type]
    contract = await node.create(PASSWORD)
    request = node.top_up_request(shortfall=Nanoton(600_000_000))
    assert (request.destination, request.amount, request.comment) == (
        contract.display_address,
        "0.600000000",
        TOP_UP_COMMENT,
    )
    assert node.top_up_request(Nanoton(5), shortfall=Nanoton(0)).amount == "0.000000005"
    with pytest.raises(UserFacingError, match="already holds enough"):
        node.top_up_request(shortfall=Nanoton(0))


@pytest.mark.parametrize("text", [TESTNET_0Q, TESTNET_KQ, f"  {TESTNET_0Q} "])
def test_owner_address_accepts_testnet_forms(text: str) -> None:
    assert validate_owner_address(text, TonNetwork.TESTNET) == TESTNET_0Q


def test_owner_address_on_mainnet() -> None:
    assert validate_owner_address(MAINNET_UQ, TonNetwork.MAINNET) == MAINNET_UQ
    with pytest.raises(AddressError):
        validate_owner_address(TESTNET_0Q, TonNetwork.MAINNET)  # testnet flag on mainnet


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        (RAW, OwnerAddressError, "user-friendly"),
        (MAINNET_UQ, OwnerAddressError, "mainnet address"),
        ("", AddressError, "Enter a TON address"),
        (TESTNET_0Q[:-1] + "A", AddressError, "checksum"),
        ("not an address", AddressError, "spaces"),
    ],
    ids=["raw", "mainnet-on-testnet", "empty", "typo", "garbage"],
)
def test_owner_address_rejections(text: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        validate_owner_address(text, TonNetwork.TESTNET)


def test_owner_address_must_be_basechain(vector_keys: KeyPair) -> None:
    master = WalletContract(WalletVersion.V4R2, TonNetwork.TESTNET, vector_keys.public_key, -1)
    with pytest.raises(OwnerAddressError, match="workchain 0"):
        validate_owner_address(master.forms.testnet_non_bounceable, TonNetwork.TESTNET)


def test_effective_owner_address() -> None:
    assert effective_owner_address("", RAW, TonNetwork.TESTNET) == TESTNET_0Q
    assert effective_owner_address("  ", TESTNET_0Q, TonNetwork.TESTNET) == TESTNET_0Q
    assert effective_owner_address("", None, TonNetwork.TESTNET) is None
    assert effective_owner_address(TESTNET_KQ, None, TonNetwork.TESTNET) == TESTNET_0Q
    with pytest.raises(OwnerAddressError):
        effective_owner_address(RAW, TESTNET_0Q, TonNetwork.TESTNET)
