"""``cocoon-provider earnings`` and ``earnings cashout`` as a user types them, bad input included:
one ``Error:`` line with a hint, nothing lost, no traceback."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from app.cli import wallet_cmd
from app.cli.main import main
from app.wallet.chain_factory import NoNetwork
from app.wallet.contracts import TonNetwork
from app.wallet.node_wallet import NodeWallet
from tests.service_builder import FAST_KDF

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fast_vaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wallet_cmd, "VAULT_KDF", FAST_KDF)


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--data-dir", str(tmp_path), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_fresh_data_folder_has_a_ledger_of_zeros(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(tmp_path, capsys, "earnings")
    assert code == 0
    assert "No proxy has billed anything yet" in out
    code, out, _ = run(tmp_path, capsys, "earnings", "--json", "--csv", str(tmp_path / "e.csv"))
    assert code == 0
    totals = json.loads(out)["totals"]
    assert (totals["earned_nanoton"], totals["paid_nanoton"], totals["unpaid_nanoton"]) == (0, 0, 0)
    assert (tmp_path / "e.csv").read_text().startswith("type,time,id,proxy,tokens")


def test_a_csv_that_cannot_be_written_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(tmp_path, capsys, "earnings", "--csv", str(tmp_path / "no" / "e.csv"))
    assert code == 1
    assert err.startswith("Error:")
    assert "Traceback" not in err


def test_cashout_without_a_terminal_asks_for_yes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run(tmp_path, capsys, "earnings", "cashout")
    assert code == 2
    assert "Error: There is no terminal to confirm the cash-out at." in err
    assert "--yes" in err


def test_cashout_without_a_node_wallet_or_with_a_wrong_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, _, err = run(tmp_path, capsys, "earnings", "cashout", "--yes", "--password-stdin")
    assert code == 1
    assert "Error: There is no node wallet yet." in err
    # Make one (the headless first start does this) and try a wrong password.
    node = NodeWallet(
        tmp_path / "wallets", TonNetwork.for_setting("devnet"), NoNetwork(), kdf=FAST_KDF
    )
    asyncio.run(node.create(PASSWORD))
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong password\n"))
    code, _, err = run(tmp_path, capsys, "earnings", "cashout", "--yes", "--password-stdin")
    assert code == 1
    assert err.startswith("Error:")
    assert "password" in err.lower()
    assert "Traceback" not in err
