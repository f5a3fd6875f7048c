"""The worker's payment book: voucher checks, maxima, regressions, persistence (kill -9 too)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from app.network.payment_store import PaymentStore
from app.network.proxy_payments import (
    AccountTerms,
    PaymentBook,
    ProxyRefusedError,
    VoucherRegressionError,
)
from app.network.tl import TLObject
from app.network.vouchers import sign_voucher

PROXY_SC = "UQBPkxYfPKgOBMbbi9VQVO2DQz7Wg3w9K5YTsl8x1_KaeZcZ"
WORKER_SC = "UQDLYGhRHNqXquKXJazsjMBUUhXtmZ_Nom43-_sztpg80bUO"
OTHER_SC = "UQAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eH0Bm"
OWNER = "0QDLYGhRHNqXquKXJazsjMBUUhXtmZ_Nom43-_sztpg80Q6E"
KEY = SigningKey(b"\x07" * 32)
TERMS = AccountTerms(fee_per_token=80, params_version=3)


def signed(tokens: int, *, key: SigningKey = KEY, payee: str = WORKER_SC) -> TLObject:
    boc = sign_voucher(
        key, tokens=tokens, query_id=tokens + 1, worker_sc_address=payee, excesses_address=PROXY_SC
    )
    return TLObject("proxy.signedPayment", {"data": boc})


def book_at(path: Path | None, **kwargs: object) -> PaymentBook:
    return PaymentBook(PaymentStore(path), terms=TERMS, **kwargs)  # type: ignore[arg-type]


def open_account(book: PaymentBook):  # type: ignore[no-untyped-def]
    return book.open(
        proxy_sc=PROXY_SC, proxy_public_key=bytes(KEY.verify_key), worker_sc=WORKER_SC, owner=OWNER
    )


async def test_vouchers_and_counters_keep_their_maxima() -> None:
    book = book_at(None)
    await book.start()
    payments = open_account(book)
    assert payments.account.fee_per_token == 80
    payments.apply(signed(100), 150, 200, strict=True)
    payments.apply(signed(50), 120, 100, strict=False)  # an older report: not taken
    account = payments.account
    assert (account.voucher_tokens, account.db_tokens, account.max_tokens) == (100, 150, 200)
    with pytest.raises(VoucherRegressionError, match="voucher for 50"):
        payments.apply(signed(50), None, None, strict=True)
    with pytest.raises(VoucherRegressionError, match="max_tokens 10"):
        payments.apply(TLObject("proxy.signedPaymentEmpty", {}), None, 10, strict=True)
    assert book.state.value[WORKER_SC].max_tokens == 200
    assert account.unpaid_tokens == 200
    assert account.cashable_tokens == 100
    await book.aclose()


@pytest.mark.allow_log_warnings
@pytest.mark.parametrize(
    ("voucher", "why"),
    [
        (signed(10**6, key=SigningKey.generate()), "signature does not verify"),
        (signed(10**6, payee=OTHER_SC), "another worker contract"),
        (TLObject("proxy.signedPayment", {"data": b"\x00garbage"}), "not a valid cell"),
    ],
)
async def test_a_bad_voucher_is_rejected_with_the_reason_logged(
    voucher: TLObject, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    book = book_at(None)
    await book.start()
    payments = open_account(book)
    assert payments.apply(voucher, 5, 5, strict=True) is None
    assert payments.account.voucher_tokens == 0
    assert payments.account.max_tokens == 5  # the counters of the report still count
    assert why in caplog.text
    await book.aclose()


async def test_a_proxy_naming_someone_elses_worker_contract_is_refused() -> None:
    book = book_at(None, worker_contract_of=lambda proxy, key, owner: OTHER_SC)
    await book.start()
    with pytest.raises(ProxyRefusedError, match="would not pay you"):
        open_account(book)
    assert book.accounts() == []
    await book.aclose()


async def test_accounts_and_billed_jobs_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "payments.sqlite3"
    book = book_at(path)
    await book.start()
    payments = open_account(book)
    payments.apply(signed(300), 300, 400, strict=True)
    payments.billed(b"r" * 32, 100, 400)
    await book.aclose()

    again = book_at(path)
    await again.start()
    account = again.for_proxy(PROXY_SC)
    assert account is not None
    assert (account.voucher_tokens, account.db_tokens, account.max_tokens) == (300, 300, 400)
    assert account.voucher is not None
    [job] = await again.store.billed()
    assert (job.tokens, job.position, job.fee_per_token) == (100, 400, 80)
    await again.aclose()


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from tests.unit.network.test_proxy_payments import book_at, open_account, signed

    async def main() -> None:
        book = book_at(Path(sys.argv[1]), flush_every=3600)
        await book.start()
        payments = open_account(book)
        payments.apply(signed(700), 700, 700, strict=True)
        await book.flush()
        payments.apply(signed(900), 900, 900, strict=True)  # in memory only: no flush
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def test_kill_9_keeps_what_was_flushed(tmp_path: Path) -> None:
    path = tmp_path / "payments.sqlite3"
    root = Path(__file__).resolve().parents[3]
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)],
        stdout=subprocess.PIPE,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"ready"
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()

    async def reopen() -> tuple[int, int] | None:
        book = book_at(path)
        await book.start()
        account = book.for_proxy(PROXY_SC)
        await book.aclose()
        return None if account is None else (account.voucher_tokens, account.max_tokens)

    # What was flushed is there, whole; the unflushed voucher is the proxy's to send again at
    # the next handshake (it always does), so nothing is lost for good.
    assert asyncio.run(reopen()) == (700, 700)
