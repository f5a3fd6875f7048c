"""The COCOON worker and proxy contracts' cells: params, storage, StateInit, address, vouchers.

Pure and offline. Layouts follow the reference runners
(``RootContractConfig::serialize_params_cell``, ``WorkerContract::init_data_cell``,
``ProxyContract::init_data_cell``, ``TonScWrapper``'s StateInit ``00 11 ^code ^data 0`` in
workchain 0) and the contracts' own storage structs; the captured reference trace proves both
addresses (``tests/unit/wallet/test_cocoon_contracts.py``).

The root configuration is taken structurally (:class:`CocoonRootParams`): ``app.network.RootConfig``
fits it, and ``app.wallet`` may not import ``app.network`` (import-linter layers).
"""

# pytoniq-core ships py.typed but leaves most methods unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.boc.slice import Slice
from pytoniq_core.tlb.account import StateInit

from app.core.billing import PriceConfig
from app.core.money import Nanoton

OP_WORKER_PAYOUT_SIGNED: Final = 0xA040AD28
OP_WORKER_LAST_PAYOUT_SIGNED: Final = 0xF5F26A36
OP_WORKER_PROXY_REQUEST: Final = 0x4D725D2C
OP_WORKER_PROXY_PAYOUT_REQUEST: Final = 0x08E7D036
OP_EXCESSES: Final = 0x2565934C
OP_PAYOUT: Final = 0xC59A7CD3
OP_DO_NOT_PROCESS: Final = 0x9A1247C0

# TonScWrapper::deploy_balance(): WorkerProxyInfo deploys the worker contract with 0.3 TON and an
# empty body (the contract accepts empty bodies and keeps the value as its storage reserve).
WORKER_DEPLOY_VALUE: Final = Nanoton(300_000_000)
# WorkerRunner::proxy_request_payout: the repacked voucher goes out with 0.5 TON for gas; what the
# chain of contracts does not burn comes back to the excesses address.
WORKER_PAYOUT_VALUE: Final = Nanoton(500_000_000)

WORKER_STATE_NORMAL: Final = 0
WORKER_STATE_CLOSED: Final = 2
WORKCHAIN: Final = 0
# Stand-in for the root contract's address in a proxy contract's storage when there is none (the
# local devnet); a real proxy stores its root's address, which changes its contract address.
NO_ROOT_ADDRESS: Final = "0:" + "00" * 32

_OUTER_BITS: Final = 32 + 64 + 267 + 512
_PAYLOAD_BITS: Final = 32 + 64 + 64 + 267


class CocoonContractError(ValueError):
    """Cells that cannot be built or read as the COCOON contracts lay them out."""


class CocoonRootParams(PriceConfig, Protocol):
    """The root configuration fields the contracts' params cell holds (``RootConfig`` has them):
    the prices and multipliers billing reads, and these."""

    @property
    def struct_version(self) -> int: ...
    @property
    def params_version(self) -> int: ...
    @property
    def unique_id(self) -> int: ...
    @property
    def is_test(self) -> bool: ...
    @property
    def proxy_delay_before_close(self) -> int: ...
    @property
    def client_delay_before_close(self) -> int: ...
    @property
    def min_proxy_stake(self) -> int: ...
    @property
    def min_client_stake(self) -> int: ...
    @property
    def proxy_sc_code(self) -> bytes | None: ...
    @property
    def worker_sc_code(self) -> bytes | None: ...
    @property
    def client_sc_code(self) -> bytes | None: ...


def _code(boc: bytes | None, what: str) -> Cell:
    if boc is None:
        raise CocoonContractError(f"The root configuration carries no {what} contract code.")
    return Cell.one_from_boc(boc)


def _params_cell(root: CocoonRootParams, *, proxy: bool, worker: bool, client: bool) -> Cell:
    # RootContractConfig::serialize_params_cell(value): the multipliers exist from struct version 2
    # (prompt/completion from 3), the stakes from 1; the three codes are Maybe refs chosen by flag.
    sv = root.struct_version
    b = Builder().store_uint(sv, 8).store_uint(root.params_version, 32)
    b.store_uint(root.unique_id, 32).store_bit(1 if root.is_test else 0)
    b.store_coins(root.price_per_token).store_coins(root.worker_fee_per_token)
    if sv >= 2:
        if sv >= 3:
            b.store_uint(root.prompt_tokens_price_multiplier, 32)
        b.store_uint(root.cached_tokens_price_multiplier, 32)
        if sv >= 3:
            b.store_uint(root.completion_tokens_price_multiplier, 32)
        b.store_uint(root.reasoning_tokens_price_multiplier, 32)
    b.store_uint(root.proxy_delay_before_close, 32).store_uint(root.client_delay_before_close, 32)
    if sv >= 1:
        b.store_coins(root.min_proxy_stake).store_coins(root.min_client_stake)
    for wanted, boc, what in (
        (proxy, root.proxy_sc_code, "proxy"),
        (worker, root.worker_sc_code, "worker"),
        (client, root.client_sc_code, "client"),
    ):
        b.store_maybe_ref(_code(boc, what) if wanted and boc is not None else None)
    cell: Cell = b.end_cell()
    return cell


def worker_params_cell(root: CocoonRootParams) -> Cell:
    """``serialize_worker_params_cell()``: the params without any contract code."""
    return _params_cell(root, proxy=False, worker=False, client=False)


def proxy_params_cell(root: CocoonRootParams) -> Cell:
    """``serialize_proxy_params_cell()``: the params with the worker and client codes, so that the
    proxy contract can recompute its workers' and clients' addresses."""
    _code(root.worker_sc_code, "worker")  # without it the proxy cannot recognise its workers
    return _params_cell(root, proxy=False, worker=True, client=True)


def _std(address: str | Address) -> Address:
    try:
        parsed = address if isinstance(address, Address) else Address(address)
    except Exception as exc:  # pytoniq-core raises several types for a bad address
        raise CocoonContractError(f"{address!r} is not a TON address.") from exc
    return parsed


def _raw(address: Address) -> str:
    return f"{address.wc}:{address.hash_part.hex()}"


def _key(public_key: bytes) -> bytes:
    if len(public_key) != 32:
        raise CocoonContractError("A proxy public key is 32 bytes.")
    return public_key


def worker_data_cell(
    *, owner: str, proxy_sc: str, proxy_public_key: bytes, state: int, tokens: int, params: Cell
) -> Cell:
    """The worker contract's storage: owner ‖ proxy contract ‖ proxy key ‖ state:2 ‖ tokens:64 ‖
    ^params (the contract's ``WorkerStorage``)."""
    cell: Cell = (
        Builder()
        .store_address(_std(owner))
        .store_address(_std(proxy_sc))
        .store_bytes(_key(proxy_public_key))
        .store_uint(state, 2)
        .store_uint(tokens, 64)
        .store_ref(params)
        .end_cell()
    )
    return cell


def worker_contract_data(
    *, owner: str, proxy_sc: str, proxy_public_key: bytes, root: CocoonRootParams
) -> Cell:
    """``WorkerContract::init_data_cell``: state 0 (normal), 0 tokens, the code-less params."""
    return worker_data_cell(
        owner=owner,
        proxy_sc=proxy_sc,
        proxy_public_key=proxy_public_key,
        state=WORKER_STATE_NORMAL,
        tokens=0,
        params=worker_params_cell(root),
    )


def worker_contract_state_init(
    *, owner: str, proxy_sc: str, proxy_public_key: bytes, root: CocoonRootParams
) -> StateInit:
    data = worker_contract_data(
        owner=owner, proxy_sc=proxy_sc, proxy_public_key=proxy_public_key, root=root
    )
    return StateInit(code=_code(root.worker_sc_code, "worker"), data=data)


def state_init_address(state_init: StateInit) -> str:
    """The raw address (workchain 0) of the contract that ``state_init`` deploys."""
    return f"{WORKCHAIN}:{bytes(state_init.serialize().hash).hex()}"


def worker_contract_address(
    *, owner: str, proxy_sc: str, proxy_public_key: bytes, root: CocoonRootParams
) -> str:
    """The worker contract's raw address ``"0:<hex>"`` for this owner, proxy contract and key."""
    return state_init_address(
        worker_contract_state_init(
            owner=owner, proxy_sc=proxy_sc, proxy_public_key=proxy_public_key, root=root
        )
    )


def worker_address_from_params(
    *, worker_code: Cell, params_without_code: Cell, owner: str, proxy_sc: str, key: bytes
) -> str:
    """What the proxy contract computes for a sender: the worker contract of ``owner``."""
    data = worker_data_cell(
        owner=owner,
        proxy_sc=proxy_sc,
        proxy_public_key=key,
        state=WORKER_STATE_NORMAL,
        tokens=0,
        params=params_without_code,
    )
    return state_init_address(StateInit(code=worker_code, data=data))


def proxy_contract_data(
    *,
    owner: str,
    proxy_public_key: bytes,
    root: CocoonRootParams,
    root_address: str | None = None,
    balance: int = 0,
    stake: int = 0,
) -> Cell:
    """``ProxyContract::init_data_cell``: owner ‖ key ‖ root address ‖ state:2 ‖ balance:Coins ‖
    stake:Coins ‖ unlock_ts:32 ‖ ^params (with the worker and client codes).

    ``balance`` here is the proxy operator's accrued share, not the account's TON balance."""
    cell: Cell = (
        Builder()
        .store_address(_std(owner))
        .store_bytes(_key(proxy_public_key))
        .store_address(_std(root_address or NO_ROOT_ADDRESS))
        .store_uint(0, 2)
        .store_coins(balance)
        .store_coins(stake)
        .store_uint(0, 32)
        .store_ref(proxy_params_cell(root))
        .end_cell()
    )
    return cell


def proxy_contract_state_init(
    *,
    owner: str,
    proxy_public_key: bytes,
    root: CocoonRootParams,
    root_address: str | None = None,
) -> StateInit:
    """The proxy contract as the reference proxy deploys it. ``root_address`` is the root
    contract's address (the reference's ``root_contract_address``); without one the stand-in
    :data:`NO_ROOT_ADDRESS` is stored, which is what the local devnet uses."""
    data = proxy_contract_data(
        owner=owner, proxy_public_key=proxy_public_key, root=root, root_address=root_address
    )
    return StateInit(code=_code(root.proxy_sc_code, "proxy"), data=data)


def proxy_contract_address(
    *,
    owner: str,
    proxy_public_key: bytes,
    root: CocoonRootParams,
    root_address: str | None = None,
) -> str:
    return state_init_address(
        proxy_contract_state_init(
            owner=owner, proxy_public_key=proxy_public_key, root=root, root_address=root_address
        )
    )


@dataclass(frozen=True, slots=True)
class WorkerStorage:
    """A worker contract's storage, read back."""

    owner: str
    proxy_sc: str
    proxy_public_key: bytes
    state: int
    tokens: int
    params: Cell


@dataclass(frozen=True, slots=True)
class ProxyStorage:
    """A proxy contract's storage, read back (``balance`` is the operator's accrued share)."""

    owner: str
    proxy_public_key: bytes
    root_address: str
    state: int
    balance: int
    stake: int
    unlock_ts: int
    params: Cell


def _load_std(cs: Slice) -> str:
    address = cs.load_address()
    if not isinstance(address, Address):
        raise CocoonContractError("Expected a standard address, found none.")
    return _raw(address)


def read_worker_storage(data: Cell) -> WorkerStorage:
    try:
        cs = data.begin_parse()
        return WorkerStorage(
            owner=_load_std(cs),
            proxy_sc=_load_std(cs),
            proxy_public_key=bytes(cs.load_bytes(32)),
            state=cs.load_uint(2),
            tokens=cs.load_uint(64),
            params=cs.load_ref(),
        )
    except CocoonContractError:
        raise
    except Exception as exc:  # pytoniq-core raises assorted types on short slices
        raise CocoonContractError("Not a worker contract's storage.") from exc


def read_worker_contract_tokens(data: Cell) -> int:
    """The cumulative tokens already paid out (what ``WorkerContract::on_state_update`` reads)."""
    return read_worker_storage(data).tokens


def read_proxy_storage(data: Cell) -> ProxyStorage:
    try:
        cs = data.begin_parse()
        return ProxyStorage(
            owner=_load_std(cs),
            proxy_public_key=bytes(cs.load_bytes(32)),
            root_address=_load_std(cs),
            state=cs.load_uint(2),
            balance=cs.load_coins(),
            stake=cs.load_coins(),
            unlock_ts=cs.load_uint(32),
            params=cs.load_ref(),
        )
    except CocoonContractError:
        raise
    except Exception as exc:  # pytoniq-core raises assorted types on short slices
        raise CocoonContractError("Not a proxy contract's storage.") from exc


def proxy_storage_cell(storage: ProxyStorage) -> Cell:
    cell: Cell = (
        Builder()
        .store_address(_std(storage.owner))
        .store_bytes(storage.proxy_public_key)
        .store_address(_std(storage.root_address))
        .store_uint(storage.state, 2)
        .store_coins(storage.balance)
        .store_coins(storage.stake)
        .store_uint(storage.unlock_ts, 32)
        .store_ref(storage.params)
        .end_cell()
    )
    return cell


def repack_voucher(voucher_boc: bytes, *, excesses: str) -> Cell:
    """``WorkerContract::repack_signed_pay_message``: the same op, query id, signature and signed
    payload, with ``excesses`` (our node wallet) as where the unused gas goes back to.

    The signature covers only the payload, so the result is as valid as the voucher was."""
    try:
        cs = Cell.one_from_boc(voucher_boc).begin_parse()
        op, query_id = cs.load_uint(32), cs.load_uint(64)
        cs.load_address()
        signature = bytes(cs.load_bytes(64))
        if op != OP_WORKER_PAYOUT_SIGNED or cs.remaining_bits or cs.remaining_refs != 1:
            raise CocoonContractError("Not a signed payout voucher.")
        payload = cs.load_ref()
    except CocoonContractError:
        raise
    except Exception as exc:  # pytoniq-core raises assorted types on bad BOCs
        raise CocoonContractError("Not a signed payout voucher.") from exc
    cell: Cell = (
        Builder()
        .store_uint(op, 32)
        .store_uint(query_id, 64)
        .store_address(_std(excesses))
        .store_bytes(signature)
        .store_ref(payload)
        .end_cell()
    )
    return cell


def params_fees(params: Cell) -> tuple[int, int]:
    """(price_per_token, worker_fee_per_token) from a params cell (they lead every version)."""
    cs = params.begin_parse()
    cs.skip_bits(8 + 32 + 32 + 1)
    return cs.load_coins(), cs.load_coins()


def split_params(params: Cell) -> tuple[Cell, Cell | None]:
    """(the params without code, the worker code) from a proxy's params cell.

    The three Maybe-code bits end the cell (``serialize_params_cell``), so clearing them and the
    refs gives what the contract's ``withoutCode()`` re-serializes."""
    cs = params.begin_parse()
    head = cs.load_bits(cs.remaining_bits - 3)
    has_proxy, has_worker = cs.load_bit(), cs.load_bit()
    refs = list(params.refs)
    worker_code = refs[1 if has_proxy else 0] if has_worker else None
    without: Cell = Builder().store_bits(head).store_uint(0, 3).end_cell()
    return without, worker_code
