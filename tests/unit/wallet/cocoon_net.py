"""The COCOON payout chain on a simulated network, shared by the contract tests: a funded node
wallet, the proxy and worker contracts, vouchers; and the reference capture's root and vouchers."""

# pytoniq-core ships py.typed but leaves most methods unannotated.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import nacl.signing
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

from app.core.money import Nanoton
from app.network.root_config import RootConfig, parse_fake_ton_config
from app.network.vouchers import sign_voucher
from app.wallet.chain import ChainTransaction
from app.wallet.cocoon_contracts import (
    WORKER_DEPLOY_VALUE,
    WORKER_PAYOUT_VALUE,
    proxy_contract_state_init,
    read_worker_contract_tokens,
    repack_voucher,
    worker_contract_address,
    worker_contract_state_init,
)
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair
from app.wallet.simulated_chain import FeeModel, SimulatedChain
from app.wallet.transfer import TransferOrder, sign_transfer
from tests.unit.network.traces import read_frame_annotations, traces_dir

NOW = 1_800_000_000
TON = 1_000_000_000
FEES = FeeModel()
OWNER = "0:" + "11" * 32  # the worker's owner address: where payouts go
PROXY_OWNER = "0:" + "22" * 32
TOKENS = 1_000_000
# Fake TON pays 1 nanoton per token; a realistic fee makes a payout visible in TON.
WORKER_FEE, PRICE = 1_000, 1_500
# What the node wallet gets back from a 0.5 TON payout: the value less both contracts' compute and
# the three internal forwards after the wallet's own (worker→proxy, proxy→owner, proxy→wallet).
EXCESS = WORKER_PAYOUT_VALUE - FEES.worker_compute - FEES.proxy_compute - 3 * FEES.forward
WALLET_SEND_FEE = FEES.external + FEES.forward


def trace_root() -> RootConfig:
    return parse_fake_ton_config((traces_dir() / "configs" / "fake-ton-config.json").read_text())


def _config(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((traces_dir() / "configs" / name).read_text())
    return loaded


def _connected_to_proxy() -> dict[str, Any]:
    for record in read_frame_annotations("router-proxy.p2r"):
        if record.get("inner") == "worker.connectedToProxy":
            answer: dict[str, Any] = record["decoded"]["data"]["tl"]
            return answer
    raise AssertionError("the capture has no worker.connectedToProxy")


def _vouchers(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "boc_hex" in node and "tokens" in node:
            yield node
        for value in node.values():
            yield from _vouchers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _vouchers(value)


def trace_voucher(tokens: int) -> bytes:
    for record in read_frame_annotations("router-proxy.p2r"):
        for voucher in _vouchers(record):
            if int(voucher["tokens"]) == tokens:
                return bytes.fromhex(voucher["boc_hex"])
    raise AssertionError(f"the capture has no voucher for {tokens} tokens")


# ---- the payout chain on the simulated chain ------------------------------------------------


@dataclasses.dataclass
class Net:
    """A local network with a funded node wallet, a proxy contract and its worker contract."""

    chain: SimulatedChain
    keys: KeyPair
    wallet: WalletContract
    proxy_key: nacl.signing.SigningKey
    root: RootConfig
    proxy: str
    worker: str
    seqno: int = 0

    async def send(self, order: TransferOrder) -> None:
        signed = sign_transfer(
            self.wallet,
            self.keys,
            order,
            seqno=self.seqno,
            valid_until=NOW + 60,
            deployed=self.seqno > 0,
        )
        await self.chain.send_boc(signed.boc)
        self.seqno += 1

    def voucher(
        self, tokens: int, *, key: nacl.signing.SigningKey | None = None, payee: str | None = None
    ) -> bytes:
        return sign_voucher(
            key or self.proxy_key,
            tokens=tokens,
            query_id=tokens + 7,
            worker_sc_address=payee or self.worker,
            excesses_address=self.proxy,
        )

    async def cash(
        self, voucher: bytes, *, value: int = WORKER_PAYOUT_VALUE, to: str | None = None
    ) -> None:
        """What the worker app does: repack with the node wallet as excesses and send it."""
        body = repack_voucher(voucher, excesses=self.wallet.raw_address)
        await self.send(TransferOrder(Address(to or self.worker), Nanoton(value), True, body=body))

    async def deploy_worker(self) -> None:
        init = worker_contract_state_init(
            owner=OWNER, proxy_sc=self.proxy, proxy_public_key=self.key_bytes, root=self.root
        )
        await self.send(
            TransferOrder(Address(self.worker), WORKER_DEPLOY_VALUE, False, state_init=init)
        )

    @property
    def key_bytes(self) -> bytes:
        return bytes(self.proxy_key.verify_key)

    async def balance(self, address: str) -> int:
        return int((await self.chain.get_account_state(address)).balance)

    async def tokens(self) -> int:
        state = await self.chain.get_account_state(self.worker)
        assert state.data is not None
        return read_worker_contract_tokens(Cell.one_from_boc(state.data))

    async def last_tx(self, address: str) -> ChainTransaction:
        return (await self.chain.get_transactions(address, 1))[0]


async def make_net(
    vector_keys: KeyPair, *, proxy_balance: int = 50 * TON, deploy_worker: bool = True
) -> Net:
    chain = SimulatedChain(None, clock=lambda: NOW)
    await chain.start()
    root = dataclasses.replace(
        trace_root(), worker_fee_per_token=Nanoton(WORKER_FEE), price_per_token=Nanoton(PRICE)
    )
    chain.register_cocoon_codes(root)
    proxy_key = nacl.signing.SigningKey(bytes([3]) * 32)
    key = bytes(proxy_key.verify_key)
    proxy = await chain.deploy_contract(
        proxy_contract_state_init(owner=PROXY_OWNER, proxy_public_key=key, root=root),
        balance=proxy_balance,
    )
    worker = worker_contract_address(owner=OWNER, proxy_sc=proxy, proxy_public_key=key, root=root)
    wallet = WalletContract(WalletVersion.V5R1, TonNetwork.TESTNET, vector_keys.public_key)
    await chain.mint(wallet.raw_address, 10 * TON)
    net = Net(chain, vector_keys, wallet, proxy_key, root, proxy, worker)
    if deploy_worker:
        await net.deploy_worker()
    return net


def truncated_voucher(voucher: bytes) -> bytes:
    """A voucher cut after its op and query id (any voucher given is ignored)."""
    del voucher
    cell = Builder().store_uint(0xA040AD28, 32).store_uint(1, 64).end_cell()
    return bytes(cell.to_boc())
