"""Wallet history rows, paging and the CSV export, on the simulated chain with real signed BOCs."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest
from pytoniq_core.boc.address import Address

from app.core.money import Nanoton
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.history import (
    CSV_COLUMNS,
    Direction,
    HistoryCursor,
    WalletHistory,
    history_csv,
)
from app.wallet.mnemonic import KeyPair
from app.wallet.simulated_chain import FAUCET_ADDRESS, FeeModel, SimulatedChain
from app.wallet.transfer import TransferOrder, sign_transfer

NOW = 1_800_000_000
TON = 10**9
PEER = "0:" + "cd" * 32
FEES = FeeModel()


@pytest.fixture
async def setup(vector_keys: KeyPair) -> AsyncIterator[tuple[SimulatedChain, WalletContract]]:
    chain = SimulatedChain(clock=lambda: NOW)
    wallet = WalletContract(WalletVersion.V5R1, TonNetwork.TESTNET, vector_keys.public_key)
    await chain.mint(wallet.raw_address, 5 * TON, comment="welcome")
    yield chain, wallet
    await chain.aclose()


async def send(
    chain: SimulatedChain,
    wallet: WalletContract,
    keys: KeyPair,
    seqno: int,
    amount: int,
    *,
    bounce: bool = False,
    comment: str | None = None,
) -> None:
    order = TransferOrder(Address(PEER), Nanoton(amount), bounce=bounce, comment=comment)
    signed = sign_transfer(
        wallet, keys, order, seqno=seqno, valid_until=NOW + 60, deployed=seqno > 0
    )
    await chain.send_boc(signed.boc)


async def test_rows_for_incoming_outgoing_bounced_and_failed(
    setup: tuple[SimulatedChain, WalletContract], vector_keys: KeyPair
) -> None:
    chain, wallet = setup
    await send(chain, wallet, vector_keys, 0, TON, comment="rent")
    await send(chain, wallet, vector_keys, 1, TON // 2, bounce=True)  # PEER is uninit: bounces
    await send(chain, wallet, vector_keys, 2, 100 * TON)  # too much: fee only, nothing sent
    page = await WalletHistory(chain, wallet.display_address).page()
    rows = [(e.direction, e.counterparty, e.amount, e.fee, e.comment, e.ok) for e in page.entries]
    assert rows == [
        (Direction.NO_TRANSFER, None, 0, FEES.external, None, False),
        (Direction.BOUNCED, PEER, TON // 2 - FEES.bounce, 0, None, True),
        (Direction.OUTGOING, PEER, TON // 2, FEES.external + FEES.forward, None, True),
        (Direction.OUTGOING, PEER, TON, FEES.external + FEES.deploy + FEES.forward, "rent", True),
        (Direction.INCOMING, FAUCET_ADDRESS, 5 * TON, 0, "welcome", True),
    ]
    assert page.next_cursor is None
    assert page.entries[0].time.isoformat() == "2027-01-15T08:00:00+00:00"


async def test_paging_by_cursor_walks_the_whole_history(
    setup: tuple[SimulatedChain, WalletContract],
) -> None:
    chain, wallet = setup
    for i in range(6):
        await chain.mint(wallet.raw_address, i + 1, comment=f"#{i}")
    history = WalletHistory(chain, wallet.raw_address)
    first = await history.page(limit=4)
    assert [e.comment for e in first.entries] == ["#5", "#4", "#3", "#2"]
    assert first.next_cursor is not None
    second = await history.page(first.next_cursor, limit=4)
    assert [e.comment for e in second.entries] == ["#1", "#0", "welcome"]
    assert second.next_cursor is None
    exact = await history.page(
        HistoryCursor(first.next_cursor.lt, first.next_cursor.tx_hash), limit=3
    )
    assert exact.next_cursor is None  # the oldest transaction has no predecessor
    assert len(await history.entries()) == 7
    assert len(await history.entries(max_transactions=5)) == 5


@pytest.mark.parametrize("limit", [0, -1, 257])
async def test_bad_page_size_is_refused(
    setup: tuple[SimulatedChain, WalletContract], limit: int
) -> None:
    chain, wallet = setup
    with pytest.raises(ValueError, match="page size"):
        await WalletHistory(chain, wallet.raw_address).page(limit=limit)


async def test_csv_export_is_exact_and_safe(
    setup: tuple[SimulatedChain, WalletContract], vector_keys: KeyPair
) -> None:
    chain, wallet = setup
    await chain.mint(wallet.raw_address, 1, comment='=HYPERLINK("http://x")')
    await send(chain, wallet, vector_keys, 0, 123_456_789, comment='a,b "quoted"\nline')
    entries = await WalletHistory(chain, wallet.raw_address).entries()
    text = history_csv(entries, show_address=lambda raw: f"<{raw[:6]}>")
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    out, formula, welcome = rows[1:]
    assert out[:6] == [
        "2027-01-15T08:00:00Z",
        "out",
        "ok",
        "<0:cdcd>",
        "0.123456789",
        format_fee(FEES.external + FEES.deploy + FEES.forward),
    ]
    assert out[6] == 'a,b "quoted"\nline'
    assert formula[4] == "0.000000001"
    assert formula[6] == '\'=HYPERLINK("http://x")'
    assert welcome[3] == f"<{FAUCET_ADDRESS[:6]}>"
    assert welcome[4] == "5.000000000"
    assert int(welcome[7]) > 0
    assert len(bytes.fromhex(welcome[8])) == 32


def format_fee(nanotons: int) -> str:
    return f"{nanotons // TON}.{nanotons % TON:09d}"


def test_csv_of_no_entries_is_just_the_header() -> None:
    assert history_csv([]) == ",".join(CSV_COLUMNS) + "\n"
