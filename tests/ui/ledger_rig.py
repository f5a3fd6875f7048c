"""Ledger data for the UI tests, through the real services: an owner wallet, a proxy contract on
the services' own simulated chain, its voucher and billed jobs in the payment book (as a proxy
link would put them there) and, for a cash-out that really pays, a node wallet with gas."""

from __future__ import annotations

from dataclasses import dataclass

from nacl.signing import SigningKey

from app.bootstrap import Services
from app.devnet.devnet_root import devnet_root_config
from app.network.proxy_payments import AccountTerms, ProxyPayments
from app.network.tl import TLObject
from app.network.vouchers import sign_voucher
from app.wallet.chain import raw_address
from app.wallet.cocoon_contracts import (
    proxy_contract_address,
    proxy_contract_state_init,
    worker_contract_address,
)
from app.wallet.simulated_chain import SimulatedChain
from tests.unit.wallet.conftest import TEST_VECTOR_PHRASE

TON = 10**9
ROOT = devnet_root_config()
FEE = ROOT.worker_fee_per_token
PASSWORD = "correct horse battery"
PROXY_KEY = SigningKey(b"\x05" * 32)
PROXY_OWNER = "0:" + "22" * 32


@dataclass(frozen=True, slots=True)
class Proxy:
    """One proxy this worker has an account with, and the link's view of that account."""

    proxy_sc: str
    worker_sc: str
    owner: str
    payments: ProxyPayments

    def hold(self, voucher_tokens: int, counted_tokens: int) -> None:
        """A signed voucher for ``voucher_tokens`` and the proxy's tally of ``counted_tokens``."""
        boc = sign_voucher(
            PROXY_KEY,
            tokens=voucher_tokens,
            query_id=voucher_tokens,
            worker_sc_address=self.worker_sc,
            excesses_address=self.proxy_sc,
        )
        signed = TLObject("proxy.signedPayment", {"data": boc})
        self.payments.apply(signed, counted_tokens, counted_tokens, strict=False)

    def bill(self, *tokens: int) -> None:
        """Jobs the proxy billed (``proxy.workerRequestPayment``), in order, from position 0."""
        position = self.payments.account.max_tokens
        for index, count in enumerate(tokens):
            position += count
            self.payments.billed(bytes([index]) * 32, count, position)


def chain_of(services: Services) -> SimulatedChain:
    chain = services.faucet_chain
    assert chain is not None, "the ledger rig runs on the local network's simulated chain"
    return chain


async def owner_wallet(services: Services) -> str:
    """The test-vector wallet imported and unlocked: the owner address earnings are paid to."""
    summary = await services.wallet.import_(TEST_VECTOR_PHRASE, PASSWORD)
    await services.wallet.unlock(PASSWORD)
    return summary.address


async def fund_node_wallet(services: Services, gas: int = 3 * TON) -> None:
    """A node wallet (unlocked) with ``gas`` on the chain: cash-outs can go out."""
    status = await services.wallet.create_node_wallet(PASSWORD)
    assert status is not None
    await services.wallet.unlock_node_wallet(PASSWORD)
    await chain_of(services).mint(status.address, gas)


async def open_proxy(
    services: Services, owner: str, *, float_nanoton: int = 10 * TON, on_chain: bool = True
) -> Proxy:
    """A proxy contract holding ``float_nanoton`` on the chain (``on_chain`` False: only its
    address, for tests that never start the chain) and this worker's account with it."""
    public_key = bytes(PROXY_KEY.verify_key)
    state_init = proxy_contract_state_init(
        owner=PROXY_OWNER, proxy_public_key=public_key, root=ROOT
    )
    if on_chain:
        chain = chain_of(services)
        chain.register_cocoon_codes(ROOT)
        proxy_sc = await chain.deploy_contract(state_init, balance=float_nanoton)
    else:
        proxy_sc = raw_address(
            proxy_contract_address(owner=PROXY_OWNER, proxy_public_key=public_key, root=ROOT)
        )
    worker_sc = worker_contract_address(
        owner=owner, proxy_sc=proxy_sc, proxy_public_key=public_key, root=ROOT
    )
    services.payments.configure(AccountTerms(fee_per_token=FEE, params_version=ROOT.params_version))
    payments = services.payments.open(
        proxy_sc=proxy_sc, proxy_public_key=public_key, worker_sc=worker_sc, owner=owner
    )
    return Proxy(proxy_sc, worker_sc, owner, payments)
