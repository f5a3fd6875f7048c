"""Proof against the real contracts: the app's signed BOCs run through the official V4R2/V5R1
wallet code in the TON transaction emulator (pytvm's bundled libemulator).

Needs ``pytvm==0.0.14`` (Linux/Windows wheels for CPython ≤ 3.11); skipped with a reason when it
is not installed. ``EmulatorEngineC.default()`` needs ``pkg_resources`` (gone in setuptools 84),
so the bundled library is loaded by path.
"""

# The tests read messages back with pytoniq-core, whose methods and unions are loosely typed.
# mypy: disable-error-code="no-untyped-call,union-attr,no-any-return"
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.account import (
    Account,
    AccountState,
    AccountStorage,
    ShardAccount,
    StorageExtraInfo,
    StorageInfo,
    StorageUsed,
)
from pytoniq_core.tlb.block import CurrencyCollection

from app.core.money import Nanoton
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair, derive_keypair, generate_mnemonic
from app.wallet.transfer import SendMode, SignedTransfer, TransferOrder, sign_transfer

if importlib.util.find_spec("pytvm") is None:
    pytest.skip(
        "pytvm is not installed (pip install pytvm==0.0.14; CPython 3.11 wheels)",
        allow_module_level=True,
    )

import pytvm
from pytvm.engine import EmulatorEngineC
from pytvm.transaction_emulator import TransactionEmulator

_LIBS = sorted((Path(pytvm.__file__).parent / "engine").glob("libemulator*"))
if not _LIBS:
    pytest.skip("pytvm has no bundled libemulator for this platform", allow_module_level=True)

NOW = 1_790_000_000
FUNDS = Nanoton(10 * 10**9)
DEST = Address("0:" + "ab" * 32)
# Exit codes of the official contracts when they refuse an external message.
EXIT = {
    WalletVersion.V4R2: {"seqno": 33, "wallet_id": 34, "signature": 35, "expired": 36},
    WalletVersion.V5R1: {"seqno": 133, "wallet_id": 134, "signature": 135, "expired": 136},
}


@pytest.fixture(scope="module")
def engine() -> Any:
    engine = EmulatorEngineC(str(_LIBS[0]))
    engine.emulator_set_verbosity_level(0)
    return engine


class EmulatedWallet:
    """One wallet account advanced message by message through the emulator."""

    def __init__(self, engine: Any, contract: WalletContract) -> None:
        self.emulator = TransactionEmulator(engine=engine)
        self.emulator.set_unixtime(NOW)
        self.lt = 1_000_000
        self.contract = contract
        self.shard_account = ShardAccount(
            Account(
                contract.address,
                StorageInfo(StorageUsed(0, 0), StorageExtraInfo("storage_extra_none"), NOW, None),
                AccountStorage(0, CurrencyCollection(FUNDS), AccountState("account_uninit")),
            ),
            b"\0" * 32,
            0,
        )

    def send(self, signed: SignedTransfer) -> dict[str, Any]:
        self.lt += 1000
        self.emulator.set_lt(self.lt)
        result: dict[str, Any] = self.emulator.emulate_transaction(
            self.shard_account.serialize(), Cell.one_from_boc(signed.boc)
        )
        if result["success"]:
            self.shard_account = result["shard_account"]
        return result

    @property
    def balance(self) -> int:
        grams: int = self.shard_account.account.storage.balance.grams
        return grams

    @property
    def state(self) -> str:
        kind: str = self.shard_account.account.storage.state.type_
        return kind


def _sign(
    contract: WalletContract,
    keys: KeyPair,
    *,
    seqno: int,
    amount: int = 10**9,
    mode: SendMode = SendMode.PAY_FEES_SEPARATELY,
    valid_until: int = NOW + 300,
    deployed: bool = True,
    comment: str | None = None,
    bounce: bool = False,
) -> SignedTransfer:
    order = TransferOrder(DEST, Nanoton(amount), bounce=bounce, mode=mode, comment=comment)
    return sign_transfer(
        contract, keys, order, seqno=seqno, valid_until=valid_until, deployed=deployed
    )


@pytest.fixture(params=list(WalletVersion), ids=str)
def version(request: pytest.FixtureRequest) -> WalletVersion:
    value: WalletVersion = request.param
    return value


def _deploy(engine: Any, keys: KeyPair, version: WalletVersion) -> EmulatedWallet:
    contract = WalletContract(version, TonNetwork.MAINNET, keys.public_key)
    account = EmulatedWallet(engine, contract)
    result = account.send(_sign(contract, keys, seqno=0, deployed=False))
    assert result["success"], result.get("error")
    return account


@pytest.fixture
def deployed(engine: Any, vector_keys: KeyPair, version: WalletVersion) -> EmulatedWallet:
    """A wallet after its first (deploying) transfer was accepted."""
    return _deploy(engine, vector_keys, version)


def _accepted_out_message(result: dict[str, Any]) -> Any:
    assert result["success"], result.get("error")
    tx = result["transaction"]
    assert tx.description.compute_ph.exit_code == 0
    assert tx.description.action.success
    assert len(tx.out_msgs) == 1
    return tx.out_msgs[0]


def test_first_transfer_deploys_and_sends(
    engine: Any, vector_keys: KeyPair, version: WalletVersion
) -> None:
    contract = WalletContract(version, TonNetwork.MAINNET, vector_keys.public_key)
    account = EmulatedWallet(engine, contract)
    signed = _sign(contract, vector_keys, seqno=0, deployed=False, comment="first ✓", amount=15)
    result = account.send(signed)
    out = _accepted_out_message(result)
    assert account.state == "account_active"
    assert (out.info.dest, out.info.value.grams, out.info.bounce) == (DEST, 15, False)
    body = out.body.begin_parse()
    assert body.load_uint(32) == 0
    assert body.load_snake_string() == "first ✓"
    assert result["transaction"].in_msg.serialize().hash == signed.message_hash


def test_deployed_transfer_is_accepted_once(
    deployed: EmulatedWallet, vector_keys: KeyPair, version: WalletVersion
) -> None:
    signed = _sign(deployed.contract, vector_keys, seqno=1, amount=2 * 10**9, bounce=True)
    out = _accepted_out_message(deployed.send(signed))
    assert (out.info.value.grams, out.info.bounce) == (2 * 10**9, True)
    replay = deployed.send(signed)
    assert not replay["success"]
    assert replay["vm_exit_code"] == EXIT[version]["seqno"]


def test_bad_signature_is_rejected(
    deployed: EmulatedWallet, vector_keys: KeyPair, version: WalletVersion
) -> None:
    intruder = derive_keypair(generate_mnemonic())
    forged_keys = KeyPair(vector_keys.public_key, intruder._secret_key)
    result = deployed.send(_sign(deployed.contract, forged_keys, seqno=1))
    assert not result["success"]
    assert result["vm_exit_code"] == EXIT[version]["signature"]


def test_wrong_seqno_is_rejected(
    deployed: EmulatedWallet, vector_keys: KeyPair, version: WalletVersion
) -> None:
    result = deployed.send(_sign(deployed.contract, vector_keys, seqno=7))
    assert result["vm_exit_code"] == EXIT[version]["seqno"]


def test_expired_message_is_rejected(
    deployed: EmulatedWallet, vector_keys: KeyPair, version: WalletVersion
) -> None:
    result = deployed.send(_sign(deployed.contract, vector_keys, seqno=1, valid_until=NOW - 1))
    assert result["vm_exit_code"] == EXIT[version]["expired"]


def test_wrong_wallet_id_is_rejected(
    deployed: EmulatedWallet, vector_keys: KeyPair, version: WalletVersion
) -> None:
    # Same address and state_init, but the body claims another wallet id.
    impostor = dataclasses.replace(deployed.contract)
    impostor.__dict__["address"] = deployed.contract.address
    impostor.__dict__["wallet_id"] = deployed.contract.wallet_id ^ 1
    result = deployed.send(_sign(impostor, vector_keys, seqno=1))
    assert result["vm_exit_code"] == EXIT[version]["wallet_id"]


def test_send_all_empties_the_wallet(
    deployed: EmulatedWallet, vector_keys: KeyPair, version: WalletVersion
) -> None:
    before = deployed.balance
    signed = _sign(deployed.contract, vector_keys, seqno=1, amount=0, mode=SendMode.SEND_ALL)
    out = _accepted_out_message(deployed.send(signed))
    assert deployed.balance == 0
    assert 0 < out.info.value.grams < before


def test_testnet_v5_message_is_not_valid_on_the_mainnet_wallet(
    engine: Any, vector_keys: KeyPair
) -> None:
    version = WalletVersion.V5R1
    deployed = _deploy(engine, vector_keys, version)
    testnet = WalletContract(version, TonNetwork.TESTNET, vector_keys.public_key)
    mainnet_addressed = dataclasses.replace(testnet)
    mainnet_addressed.__dict__["address"] = deployed.contract.address
    result = deployed.send(_sign(mainnet_addressed, vector_keys, seqno=1))
    assert result["vm_exit_code"] == EXIT[version]["wallet_id"]
