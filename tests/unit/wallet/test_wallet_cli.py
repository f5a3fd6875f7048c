"""`cocoon-provider wallet …` driven through ``app.cli.main.main`` with a temp data dir."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pytoniq_core.boc.address import Address

from app.cli import wallet_cmd
from app.cli.main import main
from app.core.money import Nanoton
from app.core.paths import AppPaths
from app.core.settings_store import SettingsStore
from app.wallet.chain import ChainOffline
from app.wallet.chain_factory import devnet_chain_path
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.lite_backend import LiteBackend
from app.wallet.mnemonic import derive_keypair, parse_mnemonic
from app.wallet.node_wallet import NodeWallet
from app.wallet.simulated_chain import SimulatedChain
from app.wallet.transfer import TransferOrder, boc_hashes, sign_transfer
from app.wallet.vault import KdfParams
from tests.unit.wallet.conftest import TEST_VECTOR_PHRASE
from tests.unit.wallet.test_lite_backend import free_port, loopback_config

PASSWORD = "cli password 1"
PEER_0Q = "0QDNzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3NzdTJ"
PEER_RAW = "0:" + "cd" * 32
V5_TESTNET = "0QDNt69BPPbquSxn9vjkxWPtvf0uPVbEARnDHvHlv06wG0A_"
V5_TESTNET_RAW = "0:cdb7af413cf6eab92c67f6f8e4c563edbdfd2e3d56c40119c31ef1e5bf4eb01b"


class Cli:
    def __init__(self, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.data_dir = data_dir
        self._monkeypatch = monkeypatch

    def __call__(
        self, *argv: str, stdin: str = "", network: str = "devnet"
    ) -> tuple[int, str, str]:
        self._monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        out, err = io.StringIO(), io.StringIO()
        self._monkeypatch.setattr("sys.stdout", out)
        self._monkeypatch.setattr("sys.stderr", err)
        code = main(["--data-dir", str(self.data_dir), "--network", network, *argv], stderr=err)
        return code, out.getvalue(), err.getvalue()

    def json(self, *argv: str, stdin: str = "", network: str = "devnet") -> Any:
        code, out, err = self(*argv, "--json", stdin=stdin, network=network)
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_kdf: KdfParams) -> Cli:
    monkeypatch.setattr(wallet_cmd, "VAULT_KDF", fast_kdf)
    return Cli(tmp_path / "data", monkeypatch)


def imported(cli: Cli, *, faucet: str | None = "10") -> None:
    code, _, err = cli(
        "wallet",
        "import",
        "--mnemonic-stdin",
        "--password-stdin",
        stdin=f"{TEST_VECTOR_PHRASE}\n{PASSWORD}\n",
    )
    assert code == 0, err
    if faucet:
        assert cli("wallet", "faucet", "--amount", faucet)[0] == 0


def send(
    cli: Cli, *argv: str, password: str = PASSWORD, network: str = "devnet"
) -> tuple[int, str, str]:
    """``wallet send ARGV --password-stdin`` with ``password`` on standard input."""
    return cli("wallet", "send", *argv, "--password-stdin", stdin=password + "\n", network=network)


def send_json(cli: Cli, *argv: str, network: str = "devnet") -> Any:
    return cli.json(
        "wallet", "send", *argv, "--password-stdin", stdin=PASSWORD + "\n", network=network
    )


def test_import_then_address(cli: Cli) -> None:
    imported(cli, faucet=None)
    data = cli.json("wallet", "address")
    assert (data["address"], data["raw"], data["version"]) == (V5_TESTNET, V5_TESTNET_RAW, "v5r1")
    settings = SettingsStore.load(AppPaths(cli.data_dir).settings_file).current.value
    assert settings.wallet.active_wallet == data["wallet_id"]
    code, out, _ = cli("wallet", "address")
    assert (code, out.strip()) == (0, V5_TESTNET)


def test_create_shows_the_phrase_once_and_never_logs_it(cli: Cli) -> None:
    code, out, err = cli(
        "wallet", "create", "--password-stdin", "--wallet-version", "v4r2", stdin=PASSWORD + "\n"
    )
    assert code == 0, err
    assert "WRITE THESE 24 WORDS DOWN" in out
    words = [line.split(". ", 1)[1] for line in out.splitlines() if ". " in line[:4]]
    assert len(words) == 24
    log_file = AppPaths(cli.data_dir).log_file
    log = log_file.read_text() if log_file.exists() else ""
    assert " ".join(words) not in log
    assert " ".join(words) not in err
    data = cli.json("wallet", "address")
    assert data["version"] == "v4r2"


def test_empty_stdin_is_a_usage_error(cli: Cli) -> None:
    code, _, err = cli("wallet", "create", "--password-stdin", stdin="")
    assert code == 2
    assert "standard input" in err


def test_short_password_is_refused(cli: Cli) -> None:
    code, _, err = cli("wallet", "create", "--password-stdin", stdin="short\n")
    assert code == 1
    assert "at least" in err


def test_bad_mnemonic_is_refused(cli: Cli) -> None:
    code, _, err = cli(
        "wallet",
        "import",
        "--mnemonic-stdin",
        "--password-stdin",
        stdin=TEST_VECTOR_PHRASE.replace("steel", "steal") + f"\n{PASSWORD}\n",
    )
    assert code == 1
    assert "Word 24 ('steal')" in err


def test_send_balance_history_and_export(cli: Cli, tmp_path: Path) -> None:
    imported(cli)
    sent = send_json(cli, "--to", PEER_0Q, "--amount", "1.5", "--comment", "hi")
    assert (sent["status"], sent["amount_ton"], sent["to"]) == ("sent", "1.500000000", PEER_0Q)
    balance = cli.json("wallet", "balance")
    assert balance["balance_ton"].startswith("8.49")
    assert balance["deployed"] is True
    assert balance["pending_send"] is None
    history = cli.json("wallet", "history", "--limit", "5")["entries"]
    assert [(e["direction"], e["amount_ton"], e["comment"]) for e in history] == [
        ("out", "1.500000000", "hi"),
        ("in", "10.000000000", "devnet faucet"),
    ]
    assert history[0]["counterparty"] == PEER_0Q
    code, text, _ = cli("wallet", "history")
    assert code == 0
    assert "-1.5 TON" in text
    target = tmp_path / "out.csv"
    assert cli.json("wallet", "export", str(target))["rows"] == 2
    assert target.read_text().startswith("time_utc,direction,status,counterparty")


def test_send_max_empties_the_wallet(cli: Cli) -> None:
    imported(cli, faucet="3")
    sent = send_json(cli, "--to", PEER_0Q, "--max")
    assert sent["send_all"] is True
    assert cli.json("wallet", "balance")["balance_nanoton"] == 0


def test_wrong_password_sends_nothing(cli: Cli) -> None:
    imported(cli)
    code, _, err = send(cli, "--to", PEER_0Q, "--amount", "1", password="not the password")
    assert code == 1
    assert "Wrong password" in err
    assert cli.json("wallet", "balance")["balance_ton"] == "10.000000000"


@pytest.mark.parametrize(
    ("to", "amount", "message"),
    [
        ("0QDNzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3NzdTK", "1", "checksum"),
        ("UQAQl0at_KHSjg0RZmXijqRpUQ-yegqzCLgMYzUQUOFEPrp", "1", "48 characters"),
        ("hello", "1", "48 characters"),
        (PEER_0Q, "1.0000000001", "9 decimal places"),
        (PEER_0Q, "-3", "negative"),
        (PEER_0Q, "1e9", "not a TON amount"),
        (PEER_0Q, "0", "greater than zero"),
        (PEER_0Q, "11", "balance is too low"),
    ],
    ids=["typo", "short", "garbage", "decimals", "negative", "exponent", "zero", "too-much"],
)
def test_bad_address_or_amount(cli: Cli, to: str, amount: str, message: str) -> None:
    imported(cli)
    code, _, err = send(cli, "--to", to, "--amount", amount)
    assert code == 1
    assert message in err
    assert cli.json("wallet", "balance")["balance_ton"] == "10.000000000"


def test_warnings_need_yes(cli: Cli) -> None:
    imported(cli)
    code, _, err = send(cli, "--to", PEER_RAW, "--amount", "1")
    assert code == 2
    assert "raw address" in err
    assert "--yes" in err
    sent = send_json(cli, "--to", PEER_RAW, "--amount", "1", "--yes")
    assert sent["status"] == "sent"


@pytest.mark.parametrize(
    "argv",
    [
        ["--to", PEER_0Q],
        ["--to", PEER_0Q, "--amount", "1", "--max"],
        ["--to", PEER_0Q, "--amount", "1", "--seqno", "3"],
        ["--to", PEER_0Q, "--amount", "1", "--offline", "--seqno", "1"],
    ],
    ids=["no-amount", "amount-and-max", "seqno-without-offline", "offline-incomplete"],
)
def test_send_usage_errors(cli: Cli, argv: list[str]) -> None:
    imported(cli, faucet=None)
    code, _, _ = send(cli, *argv)
    assert code == 2


def test_offline_signing_needs_no_network_and_is_accepted_later(cli: Cli) -> None:
    imported(cli, faucet=None)
    # testnet has no reachable liteserver here: offline signing must not try.
    data = send_json(
        cli,
        "--offline",
        "--to",
        PEER_0Q,
        "--amount",
        "0.5",
        "--comment",
        "cold",
        "--seqno",
        "0",
        "--valid-until",
        "4000000000",
        "--destination-state",
        "uninit",
        network="testnet",
    )
    boc = base64.b64decode(data["boc"])
    assert (data["message_hash"], data["normalized_hash"]) == tuple(
        h.hex() for h in boc_hashes(boc)
    )
    assert (data["seqno"], data["with_state_init"], data["bounce"]) == (0, True, False)
    assert data["amount_ton"] == "0.500000000"
    # The same bytes, broadcast later on a network that has the wallet funded, are accepted.
    chain = SimulatedChain(clock=lambda: 3_999_999_000)

    async def broadcast() -> int:
        await chain.mint(V5_TESTNET_RAW, 10**9)
        await chain.send_boc(boc)
        balance = (await chain.get_account_state(PEER_RAW)).balance
        await chain.aclose()
        return balance

    assert asyncio.run(broadcast()) == 500_000_000


def test_offline_signing_checks_its_inputs(cli: Cli) -> None:
    imported(cli, faucet=None)
    base = [
        "wallet",
        "send",
        "--offline",
        "--to",
        PEER_0Q,
        "--amount",
        "1",
        "--destination-state",
        "active",
        "--password-stdin",
    ]
    code, _, err = cli(*base, "--seqno", "1", "--valid-until", "0", stdin=PASSWORD + "\n")
    assert (code, "valid-until" in err) == (1, True)
    code, _, err = cli(*base, "--seqno", "-1", "--valid-until", "4000000000", stdin=PASSWORD + "\n")
    assert (code, "seqno" in err) == (1, True)
    code, _, err = cli(
        *base[:4],
        PEER_RAW,
        *base[5:],
        "--seqno",
        "1",
        "--valid-until",
        "4000000000",
        stdin=PASSWORD + "\n",
    )
    assert (code, "--yes" in err) == (2, True)
    code, _, err = cli(
        *base, "--seqno", "1", "--valid-until", "4000000000", stdin="wrong password\n"
    )
    assert (code, "Wrong password" in err) == (1, True)


def test_faucet_only_on_devnet(cli: Cli) -> None:
    imported(cli, faucet=None)
    code, _, err = cli("wallet", "faucet", network="testnet")
    assert code == 2
    assert "devnet" in err


def test_commands_without_a_wallet(cli: Cli) -> None:
    code, _, err = cli("wallet", "address")
    assert code == 1
    assert "no wallet" in err


def test_unknown_wallet_id(cli: Cli) -> None:
    imported(cli, faucet=None)
    code, _, err = cli("wallet", "address", "--wallet", "v5r1-testnet-0000")
    assert code == 1
    assert "There is no wallet" in err


def test_offline_network_is_reported(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    imported(cli, faucet=None)
    config = loopback_config(free_port())
    monkeypatch.setattr(
        "app.wallet.chain_factory.LiteBackend",
        lambda cfg: LiteBackend(config, timeout=1.0, connect_timeout=2.0),
    )
    monkeypatch.setattr(
        "app.wallet.chain_factory.choose_config",
        lambda network, paths, user_file="": SimpleNamespace(config=config),
    )
    code, _, err = cli("wallet", "balance", network="testnet")
    assert code == 1
    assert "cannot be reached" in err
    code, _, err = send(cli, "--to", PEER_0Q, "--amount", "1", network="testnet")
    assert code == 1
    assert "cannot be reached" in err


def test_devnet_chain_is_persisted_in_the_data_dir(cli: Cli) -> None:
    imported(cli)
    assert devnet_chain_path(AppPaths(cli.data_dir)).is_file()


def test_interactive_password_prompts(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([PASSWORD, "something else"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr("app.cli.secrets.has_terminal", lambda: True)
    code, _, err = cli("wallet", "create")
    assert code == 1
    assert "differ" in err
    answers = iter([TEST_VECTOR_PHRASE, PASSWORD, PASSWORD])
    code, out, err = cli("wallet", "import")
    assert code == 0, err
    assert V5_TESTNET in out


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (("wallet", "create"), "--password-stdin"),
        (("wallet", "import"), "--mnemonic-stdin"),
        (("wallet", "send", "--to", V5_TESTNET, "--amount", "1"), "--password-stdin"),
    ],
)
def test_no_terminal_and_no_stdin_option_is_one_clear_error(
    cli: Cli, command: tuple[str, ...], option: str
) -> None:
    # Before: getpass on a closed stdin ended in a raw EOFError traceback.
    if command[1] == "send":
        imported(cli)
    code, out, err = cli(*command, stdin="")
    assert (code, "Traceback" in out + err) == (2, False), err
    assert err.startswith("Error: There is no terminal"), err
    assert option in err


def test_create_json_carries_the_phrase(cli: Cli) -> None:
    data = cli.json("wallet", "create", "--password-stdin", stdin=PASSWORD + "\n")
    assert len(data["mnemonic"]) == 24
    assert data["address"].startswith("0Q")


def test_balance_text_shows_node_wallet_and_pending_send(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported(cli)
    code, out, _ = cli("wallet", "balance")
    assert (code, out.strip()) == (0, f"10 TON  ({V5_TESTNET})")
    # A send whose broadcast was lost stays pending and is shown.
    monkeypatch.setattr(SimulatedChain, "send_boc", _lost_send)
    sent = send_json(cli, "--to", PEER_0Q, "--amount", "1")
    assert sent["status"] == "unknown"
    code, out, _ = cli("wallet", "balance")
    assert "is not confirmed yet" in out
    node = NodeWallet(AppPaths(cli.data_dir).wallets_dir, TonNetwork.TESTNET, SimulatedChain())
    asyncio.run(node.create(PASSWORD))
    code, out, _ = cli("wallet", "balance")
    assert "node wallet needs 2.1 TON more" in out


async def _lost_send(self: SimulatedChain, boc: bytes) -> None:
    raise ChainOffline()


def test_balance_reports_a_damaged_pending_record(cli: Cli) -> None:
    imported(cli)
    wallet_id = cli.json("wallet", "address")["wallet_id"]
    pending = AppPaths(cli.data_dir).wallets_dir / "pending" / "devnet"
    pending.mkdir(parents=True)
    (pending / f"{wallet_id}.pending.json").write_text("{")
    code, _, err = cli("wallet", "balance")
    assert code == 1
    assert "damaged" in err


def test_history_text_marks_failed_transfers(cli: Cli) -> None:
    imported(cli, faucet="2")
    code, _, err = send(cli, "--to", PEER_0Q, "--amount", "0.5")
    assert code == 0, err
    # Signed elsewhere for more than the balance: the wallet pays the fee and sends nothing.
    keys = derive_keypair(parse_mnemonic(TEST_VECTOR_PHRASE))
    contract = WalletContract(WalletVersion.V5R1, TonNetwork.TESTNET, keys.public_key)
    order = TransferOrder(Address(PEER_RAW), Nanoton(100 * 10**9), bounce=False)
    signed = sign_transfer(contract, keys, order, seqno=1, valid_until=4_000_000_000, deployed=True)
    chain = SimulatedChain(devnet_chain_path(AppPaths(cli.data_dir)))

    async def broadcast() -> None:
        await chain.send_boc(signed.boc)
        await chain.credit_earnings(V5_TESTNET_RAW, 1, source=PEER_RAW)
        await chain.aclose()

    asyncio.run(broadcast())
    code, out, _ = cli("wallet", "history")
    assert code == 0
    lines = out.splitlines()
    assert "+0.000000001 TON" in lines[0]
    assert lines[1].endswith("(failed)")
    assert PEER_0Q in out
    assert "“devnet faucet”" in lines[-1]


def test_interactive_confirmation(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    imported(cli)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": PASSWORD)

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter(["no"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    monkeypatch.setattr(io, "StringIO", Tty)
    code, _, err = cli("wallet", "send", "--to", PEER_RAW, "--amount", "1")
    assert code == 1
    assert "Cancelled" in err
    answers = iter(["yes"])
    code, out, err = cli("wallet", "send", "--to", PEER_RAW, "--amount", "1")
    assert code == 0, err
    assert out.startswith("sent: 1 TON")
