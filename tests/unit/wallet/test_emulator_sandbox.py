"""Proof against the current official emulator: the app's BOCs through ``@ton/sandbox`` 0.41.0.

Needs Node and ``npm ci`` in ``tests/wallet_emulator`` (package.json + package-lock.json are
committed); skipped with a reason when either is missing. One Node run covers every case.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pytoniq_core.boc.address import Address

from app.core.money import Nanoton
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair, derive_keypair, generate_mnemonic
from app.wallet.transfer import SendMode, SignedTransfer, TransferOrder, sign_transfer

CHECKER_DIR = Path(__file__).resolve().parents[2] / "wallet_emulator"
NODE = shutil.which("node")
NOW = 1_790_000_000
FUND = 10 * 10**9
DEST_RAW = "0:" + "ab" * 32
DEST = Address(DEST_RAW)
EXIT = {
    WalletVersion.V4R2: {"seqno": 33, "wallet_id": 34, "signature": 35, "expired": 36},
    WalletVersion.V5R1: {"seqno": 133, "wallet_id": 134, "signature": 135, "expired": 136},
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(NODE is None, reason="Node.js is not installed"),
    pytest.mark.skipif(
        not (CHECKER_DIR / "node_modules" / "@ton" / "sandbox").is_dir(),
        reason="run `npm ci` in tests/wallet_emulator to install @ton/sandbox",
    ),
]


def _sign(
    contract: WalletContract,
    keys: KeyPair,
    seqno: int,
    *,
    amount: int = 10**9,
    bounce: bool = False,
    mode: SendMode = SendMode.PAY_FEES_SEPARATELY,
    valid_until: int = NOW + 300,
    comment: str | None = None,
) -> SignedTransfer:
    order = TransferOrder(DEST, Nanoton(amount), bounce=bounce, mode=mode, comment=comment)
    return sign_transfer(
        contract, keys, order, seqno=seqno, valid_until=valid_until, deployed=seqno > 0
    )


def _steps(version: WalletVersion, keys: KeyPair) -> list[SignedTransfer]:
    contract = WalletContract(version, TonNetwork.MAINNET, keys.public_key)
    intruder = derive_keypair(generate_mnemonic())
    forged = KeyPair(keys.public_key, intruder._secret_key)
    impostor = dataclasses.replace(contract)
    impostor.__dict__["address"] = contract.address
    impostor.__dict__["wallet_id"] = contract.wallet_id ^ 1
    second = _sign(contract, keys, 1, amount=2 * 10**9, bounce=True)
    return [
        _sign(contract, keys, 0, amount=1_500_000_000, comment="Hello from the app ✓"),
        second,
        second,  # replay
        _sign(contract, forged, 2),
        _sign(contract, keys, 7),
        _sign(contract, keys, 2, valid_until=NOW - 1),
        _sign(impostor, keys, 2),
        _sign(contract, keys, 2, amount=0, mode=SendMode.SEND_ALL),
    ]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, vector_keys: KeyPair) -> dict[str, Any]:
    steps = {version: _steps(version, vector_keys) for version in WalletVersion}
    cases = {
        "scenarios": [
            {
                "name": version.value,
                "now": NOW,
                "fund": FUND,
                "steps": [{"boc": s.boc.hex()} for s in signed],
            }
            for version, signed in steps.items()
        ]
    }
    path = tmp_path_factory.mktemp("sandbox") / "cases.json"
    path.write_text(json.dumps(cases))
    assert NODE is not None
    run = subprocess.run(
        [NODE, str(CHECKER_DIR / "check.mjs"), str(path)],
        cwd=CHECKER_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    output = json.loads(run.stdout)
    return {
        scenario["name"]: (steps[WalletVersion(scenario["name"])], scenario["steps"])
        for scenario in output["scenarios"]
    }


@pytest.mark.parametrize("version", list(WalletVersion), ids=str)
def test_official_contracts_accept_and_reject_exactly_as_expected(
    results: dict[str, Any], version: WalletVersion
) -> None:
    signed, steps = results[version.value]
    deploy, second, replay, bad_sig, wrong_seqno, expired, wrong_id, send_all = steps
    exits = EXIT[version]

    assert deploy["accepted"]
    assert deploy["inHash"] == signed[0].message_hash.hex()
    assert deploy["computeExitCode"] == 0
    assert deploy["outMessages"] == [
        {
            "dest": DEST_RAW,
            "value": "1500000000",
            "bounce": False,
            "comment": "Hello from the app ✓",
        }
    ]
    assert second["accepted"]
    assert second["outMessages"][0]["bounce"] is True
    assert second["outMessages"][0]["value"] == str(2 * 10**9)
    assert replay == {"accepted": False, "exitCode": exits["seqno"]}
    assert bad_sig == {"accepted": False, "exitCode": exits["signature"]}
    assert wrong_seqno == {"accepted": False, "exitCode": exits["seqno"]}
    assert expired == {"accepted": False, "exitCode": exits["expired"]}
    assert wrong_id == {"accepted": False, "exitCode": exits["wallet_id"]}
    assert send_all["accepted"]
    assert send_all["balance"] == "0"
    assert int(send_all["outMessages"][0]["value"]) > 0
