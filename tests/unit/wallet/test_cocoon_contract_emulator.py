"""The simulated COCOON worker/proxy contracts against the public FunC ones in ``@ton/sandbox``.

Each scenario is built once (real Ed25519 keys, vouchers from ``sign_voucher``, repacked as the app
does) and run on :class:`SimulatedChain` with the Python models and through
``tests/wallet_emulator/cocoon.mjs`` (the FunC sources in ``cocoon-contracts/``, see its SOURCE.md,
on the current TVM). Both must agree on every contract transaction's exit code, the stored tokens,
the proxy's accrued share and the messages sent (source, destination, op, bounced); the owner's
payout exactly, gas-carrying amounts within :data:`FEE_TOLERANCE` (``FeeModel`` fees are flat).
See docs/contracts.md. Needs Node and ``npm ci`` in tests/wallet_emulator, else skipped."""

# pytoniq-core ships py.typed but leaves most methods unannotated.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import nacl.signing
import pytest
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

from app.core.money import Nanoton
from app.network.root_config import RootConfig, parse_fake_ton_config
from app.network.vouchers import sign_voucher
from app.wallet import cocoon_contracts as cc
from app.wallet import sim_contracts as sim_contracts_module
from app.wallet.cocoon_execution import Execution, execute
from app.wallet.cocoon_vm import COMMISSION_ESTIMATE
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair
from app.wallet.simulated_chain import SimulatedChain
from app.wallet.transfer import TransferOrder, sign_transfer
from tests.unit.network.traces import traces_dir

CHECKER_DIR = Path(__file__).resolve().parents[2] / "wallet_emulator"
NODE = shutil.which("node")
FUNC_JS = "@ton-community/func-js"
NOW = 1_800_000_000
TON = 1_000_000_000
OWNER = "0:" + "11" * 32  # the worker's owner: where payouts go
PROXY_OWNER = "0:" + "22" * 32
ROOT_ADDRESS = "0:" + "33" * 32
OTHER_OWNER = "0:" + "44" * 32
PRICE, WORKER_FEE = 1_500, 1_000
K = 1000 * WORKER_FEE  # what 1000 tokens pay the owner
LOW = COMMISSION_ESTIMATE  # a voucher needs strictly more than 0.1 TON attached
# Gas and forward fees: flat FeeModel amounts against the TVM's. Measured differences are at most
# 0.0028 TON per message (docs/contracts.md); the bound leaves room for network-config changes.
FEE_TOLERANCE = 10_000_000
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(NODE is None, reason="Node.js is not installed"),
    pytest.mark.skipif(
        not all((CHECKER_DIR / "node_modules" / m).is_dir() for m in ("@ton/sandbox", FUNC_JS)),
        reason="run `npm ci` in tests/wallet_emulator to install @ton/sandbox and func-js",
    ),
]


def _node(args: list[str], stdin: str = "") -> dict[str, Any]:
    assert NODE is not None
    done = subprocess.run(
        [NODE, *args], cwd=CHECKER_DIR, input=stdin, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-4000:]
    loaded: dict[str, Any] = json.loads(done.stdout)
    return loaded


def _wallet(seed: int) -> tuple[WalletContract, KeyPair]:
    sk = nacl.signing.SigningKey(bytes([seed]) * 32)
    keys = KeyPair(bytes(sk.verify_key), bytes(sk) + bytes(sk.verify_key))
    return WalletContract(WalletVersion.V5R1, TonNetwork.TESTNET, keys.public_key), keys


@dataclasses.dataclass(frozen=True)
class World:
    """What both sides share: the root params with the compiled codes, keys and addresses."""

    root: RootConfig
    proxy_key: nacl.signing.SigningKey
    key: bytes  # its public key
    proxy: str
    worker: str
    wallets: dict[str, tuple[WalletContract, KeyPair]]
    owner: str = OWNER

    def wallet(self, name: str) -> str:
        return self.wallets[name][0].raw_address

    def owned_by(self, owner: str) -> World:
        """The same world with the worker contract of another owner."""
        worker = cc.worker_contract_address(
            owner=owner, proxy_sc=self.proxy, proxy_public_key=self.key, root=self.root
        )
        return dataclasses.replace(self, owner=owner, worker=worker)


def make_world(codes: dict[str, str]) -> World:
    trace = parse_fake_ton_config((traces_dir() / "configs" / "fake-ton-config.json").read_text())
    root = dataclasses.replace(
        trace,
        struct_version=3,  # the FunC contracts read only version 3 (mainnet's)
        price_per_token=Nanoton(PRICE),
        worker_fee_per_token=Nanoton(WORKER_FEE),
        worker_sc_code=bytes.fromhex(codes["worker"]),
        proxy_sc_code=bytes.fromhex(codes["proxy"]),
        client_sc_code=None,
    )
    proxy_key = nacl.signing.SigningKey(bytes([3]) * 32)
    key = bytes(proxy_key.verify_key)
    proxy = cc.proxy_contract_address(
        owner=PROXY_OWNER, proxy_public_key=key, root=root, root_address=ROOT_ADDRESS
    )
    worker = cc.worker_contract_address(
        owner=OWNER, proxy_sc=proxy, proxy_public_key=key, root=root
    )
    wallets = {"wallet": _wallet(5), "stranger": _wallet(6)}
    return World(root, proxy_key, key, proxy, worker, wallets)


@dataclasses.dataclass(frozen=True)
class Step:
    """One message from a wallet, with the contract's exit code and what the owner is paid."""

    sender: str  # a key of World.wallets
    value: int
    body: Cell | None = None
    to: str = "worker"  # or "proxy"
    deploy: bool = False
    code: int = 0  # the FunC contract's exit code (the first transaction's)
    paid: int = 0


def _body(*parts: tuple[int, int]) -> Cell:
    b = Builder()
    for value, bits in parts:
        b.store_uint(value, bits)
    cell: Cell = b.end_cell()
    return cell


class Kit:
    """Builds one scenario's steps for a world: vouchers, the app's repacked payouts, bad bodies."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.deploy = Step("wallet", cc.WORKER_DEPLOY_VALUE, deploy=True)
        self.other_key = nacl.signing.SigningKey(b"x" * 32)
        self.other_worker = cc.worker_contract_address(
            owner=OTHER_OWNER, proxy_sc=w.proxy, proxy_public_key=w.key, root=w.root
        )

    def voucher(self, tokens: int, key: Any = None, payee: str | None = None) -> bytes:
        return sign_voucher(
            key or self.w.proxy_key,
            tokens=tokens,
            query_id=tokens + 7,
            worker_sc_address=payee or self.w.worker,
            excesses_address=self.w.proxy,
        )

    def pay(self, tokens: int, code: int = 0, paid: int = 0, **kw: Any) -> Step:
        """What the worker app sends: the voucher repacked with the sender as excesses."""
        sender, value = kw.pop("sender", "wallet"), kw.pop("value", cc.WORKER_PAYOUT_VALUE)
        body = cc.repack_voucher(self.voucher(tokens, **kw), excesses=self.w.wallet(sender))
        return Step(sender, value, body, code=code, paid=paid)

    def raw(self, body: Cell, code: int, value: int = TON // 2, **kw: Any) -> Step:
        return Step(kw.get("sender", "wallet"), value, body, to=kw.get("to", "worker"), code=code)

    def last_payout(self, tokens: int, paid: int) -> Step:
        """op 0xf5f26a36 (``create_last_pay_message``) with the wallet as excesses."""
        head = _body((cc.OP_WORKER_LAST_PAYOUT_SIGNED, 32), (1, 64))
        signed = Builder().store_cell(head).store_uint(tokens, 64)
        payload = signed.store_address(Address(self.w.worker)).end_cell()
        outer = Builder().store_cell(head).store_address(Address(self.w.wallet("wallet")))
        outer.store_bytes(self.w.proxy_key.sign(payload.hash).signature).store_ref(payload)
        return Step("wallet", cc.WORKER_PAYOUT_VALUE, outer.end_cell(), paid=paid)

    def no_ref(self) -> Step:
        full = Cell.one_from_boc(self.voucher(1000)).begin_parse()
        return self.raw(Builder().store_bits(full.load_bits(full.remaining_bits)).end_cell(), 9)

    def extra_bit(self) -> Step:
        body = cc.repack_voucher(self.voucher(1000), excesses=self.w.wallet("wallet"))
        return self.raw(Builder().store_cell(body).store_bit(1).end_cell(), 9)

    def forged_proxy_request(self, request: Cell | None = None, code: int = 1014) -> Step:
        """A stranger claims to be the worker contract of its own wallet and asks for 1 TON."""
        stranger = Address(self.w.wallet("stranger"))
        if request is None:
            asked = Builder().store_uint(cc.OP_WORKER_PROXY_PAYOUT_REQUEST, 32).store_coins(TON)
            request = asked.store_coins(0).store_address(stranger).end_cell()
        forged = Builder().store_cell(_body((cc.OP_WORKER_PROXY_REQUEST, 32), (1, 64)))
        forged.store_address(stranger).store_uint(0, 2).store_uint(10**6, 64)
        body = forged.store_maybe_ref(request).end_cell()
        return self.raw(body, code, sender="stranger", to="proxy")

    def payload(
        self, tokens: int = 1000, *, op: int = cc.OP_WORKER_PAYOUT_SIGNED, **kw: Any
    ) -> Cell:
        """A voucher's signed payload: op, query id, tokens, payee (raw bits), extra bits."""
        head = Builder().store_uint(op, 32).store_uint(kw.get("query_id", 1), 64)
        head.store_uint(tokens, 64).store_bits(kw.get("payee", _bits(self.w.worker)))
        cell: Cell = head.store_bits(kw.get("extra", "")).end_cell()
        return cell

    def signed(self, payload: Cell, code: int = 0, paid: int = 0, **kw: Any) -> Step:
        """A voucher envelope (op, query id 1, excesses as raw bits, signature, ^payload)."""
        outer = Builder().store_cell(_body((cc.OP_WORKER_PAYOUT_SIGNED, 32), (1, 64)))
        outer.store_bits(kw.get("excesses", _bits(self.w.wallet("wallet"))))
        outer.store_bytes(kw.get("key", self.w.proxy_key).sign(payload.hash).signature)
        body = outer.store_ref(payload).end_cell()
        return Step("wallet", kw.get("value", cc.WORKER_PAYOUT_VALUE), body, code=code, paid=paid)

    def register(self, code: int, sender: str = "wallet", **kw: Any) -> Step:
        """Op 0x26ed7f65 (the owner registers with the proxy), the sender as excesses."""
        body = Builder().store_cell(_body((OP_REGISTER, 32), (1, 64)))
        body.store_address(Address(self.w.wallet(sender))).store_bits(kw.get("extra", ""))
        return self.raw(body.end_cell(), code, kw.get("value", TON // 2), sender=sender)


def _bits(address: str) -> str:
    return str(Builder().store_address(Address(address)).end_cell().bits.to01())


def _int_bits(value: int, bits: int) -> str:
    return format(value % (1 << bits), f"0{bits}b")


ZERO_HASH = "0" * 256
# MsgAddress forms other than a plain addr_std (the current TVM refuses anycast and addr_var).
ADDR_NONE = "00"
ADDR_EXTERN = "01" + "0" * 9
ADDR_WORKCHAIN_5 = "100" + _int_bits(5, 8) + ZERO_HASH
ADDR_ANYCAST = "101" + _int_bits(1, 5) + "0" + _int_bits(0, 8) + ZERO_HASH
ADDR_VAR = "110" + _int_bits(256, 9) + _int_bits(0, 32) + ZERO_HASH
OP_REGISTER = 0x26ED7F65
OP_ONLY = _body((cc.OP_WORKER_PAYOUT_SIGNED, 32))
OP_AND_QUERY = _body((cc.OP_WORKER_PAYOUT_SIGNED, 32), (1, 64))
UNKNOWN_OP = _body((0x1234, 32), (1, 64))
NO_PAYLOAD = Builder().store_cell(_body((cc.OP_WORKER_PROXY_REQUEST, 32), (1, 64)))
NO_PAYLOAD = NO_PAYLOAD.store_address(Address(OWNER)).store_uint(0, 2 + 64 + 1).end_cell()
# Each scenario's steps follow the worker contract's deploy (from the node wallet, 0.3 TON).
SCENARIOS: dict[str, Callable[[Kit], list[Step]]] = {
    "happy payout": lambda k: [k.pay(1000, paid=K)],
    "second higher voucher pays the delta": lambda k: [
        k.pay(1000, 0, K),
        k.pay(2500, 0, K * 3 // 2),
    ],
    "lower or equal voucher rejected": lambda k: [
        *(k.pay(2000, 0, 2 * K), k.pay(2000, 1000), k.pay(1500, 1000))
    ],
    "wrong signer": lambda k: [k.pay(1000, 1007, key=k.other_key)],
    "voucher for another worker contract": lambda k: [k.pay(1000, 1015, payee=k.other_worker)],
    "malformed body": lambda k: [
        *(k.no_ref(), k.extra_bit(), k.raw(OP_ONLY, 9), k.raw(_body((0xA040, 16)), 9)),
        k.pay(1000, paid=K),  # and a good voucher still works afterwards
    ],
    "too little value": lambda k: [
        *(k.pay(1000, 1003, value=LOW // 2), k.pay(1000, 1003, value=LOW)),
        k.pay(1000, 0, K, value=LOW + 1),
    ],
    "a stranger may cash the voucher": lambda k: [k.pay(1000, 0, K, sender="stranger")],
    "forged proxy request": lambda k: [k.forged_proxy_request()],
    "last payout closes the contract": lambda k: [k.last_payout(1000, K), k.pay(2000, 1006)],
    # The worker contract stores the tokens first; the proxy cannot pay (TVM range check 5) and
    # bounces; the worker contract ignores bounces: those tokens stay unpaid (see PROXY_BALANCE).
    "underfunded proxy": lambda k: [k.pay(10**6)],
    # The worker contract's order (cocoon_worker.fc): op and query id (9), closed (1006), the op
    # (1012), the envelope's layout (9), the signature (1007), the payload's op and query id
    # (both loaded, then compared: 9, 1005), the payload's layout (9), the value (1003), the payee
    # (1015), the total (1000), then the parts as coins (5).
    "too little value and a bad signature": lambda k: [
        k.pay(1000, 1007, key=k.other_key, value=LOW)
    ],
    "too little value and a truncated body": lambda k: [k.raw(OP_AND_QUERY, 9, LOW)],
    "unknown op": lambda k: [k.raw(UNKNOWN_OP, 1012), k.raw(_body((0x1234, 32)), 9)],
    "the signature before the payload's op and query id": lambda k: [
        k.signed(k.payload(query_id=2), 1007, key=k.other_key),
        k.signed(_body((0xDEAD, 32)), 1007, key=k.other_key),
    ],
    "payload op or query id differ": lambda k: [
        k.signed(k.payload(op=cc.OP_WORKER_LAST_PAYOUT_SIGNED), 1005),
        k.signed(k.payload(query_id=2), 1005),
        k.signed(_body((0xDEAD, 32)), 9),  # the query id is loaded before the op is compared
    ],
    "the payload's layout before the value": lambda k: [
        k.signed(k.payload(extra="1"), 9, value=LOW),
        k.signed(k.payload(payee=ADDR_ANYCAST), 9, value=LOW),
    ],
    "the value before the payee and the total": lambda k: [
        k.pay(1000, 0, K),
        k.pay(1000, 1003, payee=k.other_worker, value=LOW),
        k.pay(500, 1003, value=LOW),
    ],
    "the payee before the total": lambda k: [
        k.pay(1000, 0, K),
        k.pay(500, 1015, payee=k.other_worker),
    ],
    "payees that are not a plain address": lambda k: [
        *(k.signed(k.payload(payee=a), 1015) for a in (ADDR_NONE, ADDR_EXTERN, ADDR_WORKCHAIN_5)),
        *(k.signed(k.payload(payee=a), 9) for a in (ADDR_ANYCAST, ADDR_VAR)),
        k.signed(k.payload(), 0, K),
    ],
    # The worker forwards any loadable excesses address; the proxy's action phase then fails (34,
    # 36), which rolls it back without a bounce: the tokens stay stored and unpaid.
    "excesses the proxy cannot send to": lambda k: [
        k.signed(k.payload(1000), excesses=ADDR_NONE),
        k.signed(k.payload(2000), excesses=ADDR_WORKCHAIN_5),
        *(k.signed(k.payload(3000), 9, excesses=a) for a in (ADDR_ANYCAST, ADDR_VAR)),
    ],
    "last payout at the stored total": lambda k: [k.pay(1000, 0, K), k.last_payout(1000, 0)],
    "a closed contract checks op and query id first": lambda k: [
        k.last_payout(1000, K),
        *(k.raw(UNKNOWN_OP, 1006), k.raw(OP_ONLY, 9), k.register(1006, sender="stranger")),
    ],
    "register: value, then the owner, then the layout": lambda k: [
        k.register(1003, sender="stranger", value=LOW),
        k.register(1010, sender="stranger", extra="1"),
    ],
    "the owner registers": lambda k: [
        k.register(9, extra="1"),
        k.register(0),
        k.pay(1000, 0, K),  # the owner (our wallet) is paid
    ],
    # The proxy contract: op (9), query id unless op 0 (9), the op; for 0x4d725d2c the layout
    # (9), no payload: accepted from anyone; else the sender (1014), the inner op (1012), its
    # layout (9), closed (1006), the reserve (5).
    "unknown op to the proxy": lambda k: [k.raw(UNKNOWN_OP, 1012, to="proxy")],
    "proxy text ops": lambda k: [
        k.raw(_body((0, 32), (ord("x"), 8)), 1013, to="proxy"),
        k.raw(_body((0, 32)), 9, to="proxy"),
    ],
    "a proxy request without payload from anyone": lambda k: [
        k.raw(NO_PAYLOAD, 0, sender="stranger", to="proxy")
    ],
    "the proxy checks the sender before the inner op": lambda k: [
        k.forged_proxy_request(_body((0xDEAD, 32))),
        k.forged_proxy_request(Cell.empty()),
    ],
}
PROXY_BALANCE = {"underfunded proxy": TON // 20}
OWNED_BY = {"the owner registers": "wallet"}  # the worker contract's owner is one of our wallets


def world_for(w: World, name: str) -> World:
    return w.owned_by(w.wallet(OWNED_BY[name])) if name in OWNED_BY else w


def _op(body: Cell | None) -> int | None:
    return None if body is None or len(body.bits) < 32 else int(body.begin_parse().load_uint(32))


def _emulator_input(w: World, name: str, steps: list[Step]) -> dict[str, Any]:
    fields = ((f.name, getattr(w.root, f.name)) for f in dataclasses.fields(w.root))
    params = {k: str(v) for k, v in fields if type(v) is int} | {"is_test": w.root.is_test}
    messages = [
        {"from": w.wallet(s.sender), "to": s.to, "value": str(s.value), "deploy": s.deploy}
        | {"body": None if s.body is None else s.body.to_boc().hex()}
        for s in steps
    ]
    proxy = {"address": w.proxy, "owner": PROXY_OWNER, "publicKey": w.key.hex()}
    proxy |= {"root": ROOT_ADDRESS, "balance": str(PROXY_BALANCE.get(name, 50 * TON))}
    worker = {"owner": w.owner}
    return dict(name=name, now=NOW, params=params, proxy=proxy, worker=worker, steps=messages)


@pytest.fixture(scope="module")
def world() -> World:
    return make_world(_node(["cocoon.mjs", "--codes"]))


@pytest.fixture(scope="module")
def built(world: World) -> dict[str, list[Step]]:
    kits = {name: Kit(world_for(world, name)) for name in SCENARIOS}
    return {name: [kits[name].deploy, *build(kits[name])] for name, build in SCENARIOS.items()}


@pytest.fixture(scope="module")
def emulated(world: World, built: dict[str, list[Step]]) -> dict[str, dict[str, Any]]:
    """Every scenario through the sandbox in one Node run."""
    entries = [
        _emulator_input(world_for(world, name), name, steps) for name, steps in built.items()
    ]
    out = _node(["cocoon.mjs"], json.dumps({"scenarios": entries}))
    return {s["name"]: s for s in out["scenarios"]}


class View(NamedTuple):
    """A step on either side: the contracts' transactions (account, exit code) in order, the
    messages they sent (source, destination, op, bounced, value), and the state afterwards."""

    exits: list[tuple[str, int | None, bool]]
    messages: list[tuple[str, str, int | None, bool, int]]
    tokens: int
    accrued: int
    worker_balance: int


async def run_simulated(
    w: World, name: str, steps: list[Step], monkeypatch: pytest.MonkeyPatch
) -> list[View]:
    runs: list[tuple[str, Execution]] = []

    def recording(kind: Any, **kwargs: Any) -> Execution:
        run = execute(kind, **kwargs)
        runs.append((kwargs["message"].destination, run))
        return run

    monkeypatch.setattr(sim_contracts_module, "execute", recording)
    chain = SimulatedChain(None, clock=lambda: NOW)
    await chain.start()
    chain.register_cocoon_codes(w.root)
    init = cc.proxy_contract_state_init(
        owner=PROXY_OWNER, proxy_public_key=w.key, root=w.root, root_address=ROOT_ADDRESS
    )
    balance = PROXY_BALANCE.get(name, 50 * TON)
    assert await chain.deploy_contract(init, balance=balance) == w.proxy
    worker_init = cc.worker_contract_state_init(
        owner=w.owner, proxy_sc=w.proxy, proxy_public_key=w.key, root=w.root
    )
    seqnos = dict.fromkeys(w.wallets, 0)
    for wallet_name in w.wallets:
        await chain.mint(w.wallet(wallet_name), 10 * TON)
    views = []
    try:
        for step in steps:
            runs.clear()
            to = Address(w.proxy if step.to == "proxy" else w.worker)
            init_or_none = worker_init if step.deploy else None
            order = TransferOrder(to, Nanoton(step.value), not step.deploy, body=step.body)
            order = dataclasses.replace(order, state_init=init_or_none)
            (wallet, keys), seqno = w.wallets[step.sender], seqnos[step.sender]
            signed = sign_transfer(
                wallet, keys, order, seqno=seqno, valid_until=NOW + 60, deployed=seqno > 0
            )
            await chain.send_boc(signed.boc)
            seqnos[step.sender] += 1
            worker = await chain.get_account_state(w.worker)
            proxy = await chain.get_account_state(w.proxy)
            assert proxy.data is not None
            assert worker.data is not None  # every scenario deploys it first
            sent = [(a, m) for a, run in runs for m in run.sent]
            views.append(
                View(
                    [(a, run.exit_code, run.aborted) for a, run in runs],
                    [(a, m.destination, _op(m.body), m.bounced, m.value) for a, m in sent],
                    cc.read_worker_contract_tokens(Cell.one_from_boc(worker.data)),
                    cc.read_proxy_storage(Cell.one_from_boc(proxy.data)).balance,
                    int(worker.balance),
                )
            )
    finally:
        await chain.aclose()
    return views


def emulator_views(w: World, result: dict[str, Any]) -> list[View]:
    views = []
    for step in result["steps"]:
        txs = [t for t in step["transactions"] if t["account"] in (w.worker, w.proxy)]
        sent = [(t["account"], m) for t in txs for m in t["outMessages"]]
        views.append(
            View(
                [(t["account"], t["exitCode"], t["aborted"]) for t in txs],
                [(a, m["dest"], m["op"], m["bounced"], int(m["value"])) for a, m in sent],
                int(step["worker"]["tokens"]),
                int(step["proxy"]["storedBalance"]),
                int(step["worker"]["balance"]),
            )
        )
    return views


def _paid(view: View, owner: str) -> int:
    return sum(m[4] for m in view.messages if m[1] == owner and m[2] == cc.OP_PAYOUT)


def test_both_sides_compute_the_same_contract_addresses(
    world: World, emulated: dict[str, dict[str, Any]]
) -> None:
    for name, result in emulated.items():
        assert result["workerAddress"] == world_for(world, name).worker  # params + storage layout
        assert result["proxyStateInitAddress"] == world.proxy  # proxy params + storage layout


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_simulated_contracts_match_the_emulator(
    name: str,
    world: World,
    built: dict[str, list[Step]],
    emulated: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps, w = built[name], world_for(world, name)
    simulated = await run_simulated(w, name, steps, monkeypatch)
    sandbox = emulator_views(w, emulated[name])
    for index, (sim, emu, step) in enumerate(zip(simulated, sandbox, steps, strict=True)):
        where = f"{name}, step {index}"
        assert emu.exits[0][1] == step.code, where
        assert sim.exits == emu.exits, where
        assert [m[:4] for m in sim.messages] == [m[:4] for m in emu.messages], where
        for ours, theirs in zip(sim.messages, emu.messages, strict=True):
            if ours[2] == cc.OP_PAYOUT:
                assert ours[4] == theirs[4], where  # the owner's money: exact
            else:
                assert abs(ours[4] - theirs[4]) <= FEE_TOLERANCE, (where, ours, theirs)
        assert _paid(sim, w.owner) == _paid(emu, w.owner) == step.paid, where
        assert (sim.tokens, sim.accrued) == (emu.tokens, emu.accrued), where
        assert abs(sim.worker_balance - emu.worker_balance) <= FEE_TOLERANCE, where
