"""Wallet contracts against the test vector (docs/wallet.md §2.4): addresses, ids, networks."""

from __future__ import annotations

import pytest

from app.wallet.contracts import (
    TonNetwork,
    WalletContract,
    WalletVersion,
    v5r1_wallet_id,
)
from app.wallet.mnemonic import KeyPair

# docs/wallet.md §2.4, produced by both pytoniq and @ton/ton.
VECTOR = {
    (WalletVersion.V4R2, TonNetwork.MAINNET): (
        "0:109746adfca1d28e0d116665e28ea469510fb27a0ab308b80c63351050e1443e",
        "EQAQl0at_KHSjg0RZmXijqRpUQ-yegqzCLgMYzUQUOFEPue2",
        "UQAQl0at_KHSjg0RZmXijqRpUQ-yegqzCLgMYzUQUOFEPrpz",
        "kQAQl0at_KHSjg0RZmXijqRpUQ-yegqzCLgMYzUQUOFEPlw8",
        "0QAQl0at_KHSjg0RZmXijqRpUQ-yegqzCLgMYzUQUOFEPgH5",
    ),
    (WalletVersion.V5R1, TonNetwork.MAINNET): (
        "0:1797a5786aabfda0092fd61005716bc49e4069fd63bf010670fa975122844713",
        "EQAXl6V4aqv9oAkv1hAFcWvEnkBp_WO_AQZw-pdRIoRHE136",
        "UQAXl6V4aqv9oAkv1hAFcWvEnkBp_WO_AQZw-pdRIoRHEwA_",
        "kQAXl6V4aqv9oAkv1hAFcWvEnkBp_WO_AQZw-pdRIoRHE-Zw",
        "0QAXl6V4aqv9oAkv1hAFcWvEnkBp_WO_AQZw-pdRIoRHE7u1",
    ),
    (WalletVersion.V5R1, TonNetwork.TESTNET): (
        "0:cdb7af413cf6eab92c67f6f8e4c563edbdfd2e3d56c40119c31ef1e5bf4eb01b",
        "EQDNt69BPPbquSxn9vjkxWPtvf0uPVbEARnDHvHlv06wG6Zw",
        "UQDNt69BPPbquSxn9vjkxWPtvf0uPVbEARnDHvHlv06wG_u1",
        "kQDNt69BPPbquSxn9vjkxWPtvf0uPVbEARnDHvHlv06wGx36",
        "0QDNt69BPPbquSxn9vjkxWPtvf0uPVbEARnDHvHlv06wG0A_",
    ),
}


@pytest.mark.parametrize(("version", "network"), list(VECTOR), ids=str)
def test_test_vector_address_forms(
    vector_keys: KeyPair, version: WalletVersion, network: TonNetwork
) -> None:
    contract = WalletContract(version, network, vector_keys.public_key)
    forms = contract.forms
    raw, eq, uq, kq, zq = VECTOR[(version, network)]
    assert (
        forms.raw,
        forms.mainnet_bounceable,
        forms.mainnet_non_bounceable,
        forms.testnet_bounceable,
        forms.testnet_non_bounceable,
    ) == (raw, eq, uq, kq, zq)
    assert contract.raw_address == raw
    assert contract.display_address == (zq if network.is_testnet else uq)


def test_v4r2_address_is_the_same_on_both_networks(vector_keys: KeyPair) -> None:
    main = WalletContract(WalletVersion.V4R2, TonNetwork.MAINNET, vector_keys.public_key)
    test = WalletContract(WalletVersion.V4R2, TonNetwork.TESTNET, vector_keys.public_key)
    assert main.address == test.address
    assert main.wallet_id == test.wallet_id == 698_983_191
    assert test.display_address.startswith("0Q")


def test_wallet_ids_per_network() -> None:
    assert v5r1_wallet_id(TonNetwork.MAINNET) == 2_147_483_409
    assert v5r1_wallet_id(TonNetwork.TESTNET) == 2_147_483_645
    key = bytes(32)
    assert WalletContract(WalletVersion.V4R2, TonNetwork.MAINNET, key, -1).wallet_id == 698_983_190
    assert WalletContract(WalletVersion.V5R1, TonNetwork.MAINNET, key).wallet_id == 2_147_483_409


def test_network_for_setting() -> None:
    assert TonNetwork.for_setting("mainnet") is TonNetwork.MAINNET
    assert TonNetwork.for_setting("testnet") is TonNetwork.TESTNET
    assert TonNetwork.for_setting("devnet") is TonNetwork.TESTNET
    with pytest.raises(ValueError, match="unknown network"):
        TonNetwork.for_setting("custom")


def test_contract_rejects_bad_keys_and_workchains() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        WalletContract(WalletVersion.V5R1, TonNetwork.MAINNET, bytes(31))
    with pytest.raises(ValueError, match="workchain"):
        WalletContract(WalletVersion.V5R1, TonNetwork.MAINNET, bytes(32), 5)


def test_state_init_carries_the_official_code(vector_keys: KeyPair) -> None:
    v4 = WalletContract(WalletVersion.V4R2, TonNetwork.MAINNET, vector_keys.public_key)
    v5 = WalletContract(WalletVersion.V5R1, TonNetwork.MAINNET, vector_keys.public_key)
    # Code hashes of the official wallet contracts (as listed by tonviewer / the TON docs).
    assert v4.code.hash.hex() == "feb5ff6820e2ff0d9483e7e0d62c817d846789fb4ae580c878866d959dabd5c0"
    assert v5.code.hash.hex() == "20834b7b72b112147e1b2fb457b84e74d1a30f04f737d4f62a668e9552d2b72f"
    assert v4.state_init.code is v4.code
