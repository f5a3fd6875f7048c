"""The root contract read through the live TON backend (against the fake balancer the wallet's
live backend is tested with): the same ``RootConfig`` as from a fake-TON file, and clear errors
when the liteserver times out or the account is not there."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.proof.check_proof import ProofError
from pytoniq_core.tlb.account import StateInit
from pytoniq_core.tlb.block import CurrencyCollection

from app.network.root_config import RootConfigError
from app.network.root_watcher import chain_source
from app.wallet.chain import ChainError, ChainTimeout
from app.wallet.lite_backend import LiteBackend
from tests.unit.network.test_root_config import params_cell, root_cell
from tests.unit.wallet.test_lite_backend import FakeBalancer, loopback_config

ROOT = "0:" + "ab" * 32


def _root_account(data: Cell) -> tuple[object, object]:
    init = StateInit(code=Builder().store_uint(7, 8).end_cell(), data=data)
    storage = SimpleNamespace(
        state=SimpleNamespace(type_="account_active", state_init=init),
        balance=CurrencyCollection(grams=10**9),
    )
    shard = SimpleNamespace(last_trans_lt=5, last_trans_hash=b"\x05" * 32)
    return SimpleNamespace(storage=storage), shard


async def _backend(fake: FakeBalancer) -> LiteBackend:
    chain = LiteBackend(
        loopback_config(1), timeout=1.0, balancer_factory=lambda cfg, trust, timeout: fake
    )
    await chain.start()
    return chain


async def test_a_production_root_is_read_from_the_chain() -> None:
    fake = FakeBalancer()
    fake.accounts[ROOT] = _root_account(root_cell(params_cell(is_test=False)))
    chain = await _backend(fake)
    try:
        root = await chain_source(chain, ROOT)()
    finally:
        await chain.aclose()
    assert root.is_test is False
    assert [str(p) for p in root.proxy_addresses] == ["10.0.0.1:11001", "10.0.0.2:11001"]
    assert root.worker_sc_code is not None


@pytest.mark.parametrize(
    ("setup", "error", "message"),
    [
        (lambda fake: setattr(fake, "fail_with", TimeoutError()), ChainTimeout, "did not answer"),
        (
            lambda fake: setattr(fake, "fail_with", ProofError("state hashes mismatch")),
            ChainError,
            "failed its proof check",
        ),
        (lambda fake: None, RootConfigError, "not active"),
        (
            lambda fake: fake.accounts.__setitem__(ROOT, _root_account(Builder().end_cell())),
            RootConfigError,
            "could not be read",
        ),
    ],
    ids=["liteserver times out", "liteserver lies", "no root contract", "truncated root data"],
)
async def test_a_bad_read_is_a_clear_error(setup: object, error: type, message: str) -> None:
    fake = FakeBalancer()
    setup(fake)  # type: ignore[operator]
    chain = await _backend(fake)
    try:
        with pytest.raises(error, match=message):
            await chain_source(chain, ROOT)()
    finally:
        await chain.aclose()
