"""Transfer building and signing: golden hashes (docs/wallet.md §3.3), contents, bad input."""

# The tests read messages back with pytoniq-core, whose methods and unions are loosely typed.
# mypy: disable-error-code="no-untyped-call,union-attr,no-any-return"
from __future__ import annotations

import pytest
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.transaction import MessageAny

from app.core.money import MAX_NANOTONS, Nanoton
from app.wallet.chain import normalized_external_hash
from app.wallet.contracts import TonNetwork, WalletContract, WalletVersion
from app.wallet.mnemonic import KeyPair, derive_keypair, generate_mnemonic
from app.wallet.transfer import (
    MAX_COMMENT_CHARS,
    SendMode,
    TransferError,
    TransferOrder,
    boc_hashes,
    sign_transfer,
)

DEST = Address("0:" + "ab" * 32)
GOLDEN_ORDER = TransferOrder(
    DEST, Nanoton(1_500_000_000), bounce=False, comment="Hello from pytoniq ✓"
)
# docs/wallet.md §3.3: identical in pytoniq and @ton/ton (seqno 0, valid_until 0xFFFFFFFF).
GOLDEN = {
    WalletVersion.V4R2: (
        "9d3d73978ad66e9e921d81c6e9e1d2899a94c780ebbfc796649b328f4d969644",
        "0250c50e96de2a1fa6a5e9e5c2e6d741025c6bf334ecee885b9a78e2eb874cb0",
        978,
    ),
    WalletVersion.V5R1: (
        "1002b56f777dce54931d99a36c51685f285bed3c166363f83b151166d7882271",
        "a7ec5c77cc229e66c2e10c001cc520b3b6da992424e43b220201f0552463c9eb",
        908,
    ),
}


def _contract(keys: KeyPair, version: WalletVersion = WalletVersion.V5R1) -> WalletContract:
    return WalletContract(version, TonNetwork.MAINNET, keys.public_key)


@pytest.mark.parametrize("version", list(WalletVersion))
def test_golden_first_transfer_matches_the_reference(
    vector_keys: KeyPair, version: WalletVersion
) -> None:
    signed = sign_transfer(
        _contract(vector_keys, version),
        vector_keys,
        GOLDEN_ORDER,
        seqno=0,
        valid_until=0xFFFF_FFFF,
        deployed=False,
    )
    cell_hash, norm_hash, size = GOLDEN[version]
    assert signed.message_hash.hex() == cell_hash
    assert signed.normalized_hash.hex() == norm_hash
    assert len(signed.boc) == size
    assert signed.with_state_init
    assert boc_hashes(signed.boc) == (signed.message_hash, signed.normalized_hash)


@pytest.mark.parametrize("version", list(WalletVersion))
def test_deployed_transfer_has_no_state_init_and_the_requested_fields(
    vector_keys: KeyPair, version: WalletVersion
) -> None:
    contract = _contract(vector_keys, version)
    order = TransferOrder(DEST, Nanoton(123), bounce=True, comment="memo 42")
    signed = sign_transfer(
        contract, vector_keys, order, seqno=7, valid_until=1_800_000_000, deployed=True
    )
    message = MessageAny.deserialize(Cell.one_from_boc(signed.boc).begin_parse())
    assert message.init is None
    assert message.info.dest == contract.address
    internal = _single_internal(message.body, version)
    assert internal.info.dest == DEST
    assert internal.info.value.grams == 123
    assert internal.info.bounce is True
    comment = internal.body.begin_parse()
    assert comment.load_uint(32) == 0
    assert comment.load_snake_string() == "memo 42"
    assert (signed.seqno, signed.valid_until, signed.with_state_init) == (7, 1_800_000_000, False)


def _single_internal(body: Cell, version: WalletVersion) -> MessageAny:
    s = body.begin_parse()
    if version is WalletVersion.V4R2:
        s.skip_bits(512 + 32 + 32 + 32 + 8)
        assert s.load_uint(8) == SendMode.PAY_FEES_SEPARATELY
        return MessageAny.deserialize(s.load_ref().begin_parse())
    s.skip_bits(32 * 4 + 1)
    action = s.load_ref().begin_parse()
    action.load_ref()
    assert action.load_uint(32) == 0x0EC3C86D
    assert action.load_uint(8) == SendMode.PAY_FEES_SEPARATELY
    return MessageAny.deserialize(action.load_ref().begin_parse())


def test_send_all_uses_mode_130_and_value_zero(vector_keys: KeyPair) -> None:
    order = TransferOrder(DEST, Nanoton(0), bounce=False, mode=SendMode.SEND_ALL)
    signed = sign_transfer(
        _contract(vector_keys, WalletVersion.V4R2),
        vector_keys,
        order,
        seqno=3,
        valid_until=1_800_000_000,
        deployed=True,
    )
    body = MessageAny.deserialize(Cell.one_from_boc(signed.boc).begin_parse()).body
    s = body.begin_parse()
    s.skip_bits(512 + 104)
    assert s.load_uint(8) == 130
    internal = MessageAny.deserialize(s.load_ref().begin_parse())
    assert internal.info.value.grams == 0
    assert internal.body.bits.tobytes() == b""  # no comment


def test_signatures_differ_per_key(vector_keys: KeyPair) -> None:
    other = derive_keypair(generate_mnemonic())
    contract = _contract(vector_keys)
    with pytest.raises(TransferError, match="does not belong"):
        sign_transfer(contract, other, GOLDEN_ORDER, seqno=1, valid_until=2, deployed=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seqno": -1, "valid_until": 10, "deployed": True}, "seqno"),
        ({"seqno": 2**32, "valid_until": 10, "deployed": True}, "seqno"),
        ({"seqno": 1, "valid_until": 0, "deployed": True}, "valid_until"),
        ({"seqno": 1, "valid_until": 2**32, "deployed": True}, "valid_until"),
        ({"seqno": 1, "valid_until": 10, "deployed": False}, "undeployed"),
    ],
)
def test_inconsistent_signing_parameters_are_programming_errors(
    vector_keys: KeyPair, kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        sign_transfer(_contract(vector_keys), vector_keys, GOLDEN_ORDER, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (TransferOrder(DEST, Nanoton(0), bounce=False), "greater than zero"),
        (TransferOrder(DEST, Nanoton(-5), bounce=False), "greater than zero"),
        (TransferOrder(DEST, Nanoton(MAX_NANOTONS + 1), bounce=False), "larger than all"),
        (
            TransferOrder(DEST, Nanoton(1), bounce=False, comment="x" * (MAX_COMMENT_CHARS + 1)),
            "comment is too long",
        ),
        (TransferOrder(DEST, Nanoton(1), bounce=False, comment="a\x00b"), "NUL"),
    ],
    ids=["zero", "negative", "too-large", "comment-too-long", "comment-nul"],
)
def test_bad_orders_are_refused(vector_keys: KeyPair, order: TransferOrder, message: str) -> None:
    with pytest.raises(TransferError, match=message):
        sign_transfer(
            _contract(vector_keys), vector_keys, order, seqno=1, valid_until=9, deployed=True
        )


def test_send_all_with_an_amount_is_a_programming_error(vector_keys: KeyPair) -> None:
    order = TransferOrder(DEST, Nanoton(5), bounce=False, mode=SendMode.SEND_ALL)
    with pytest.raises(ValueError, match="amount 0"):
        sign_transfer(
            _contract(vector_keys), vector_keys, order, seqno=1, valid_until=9, deployed=True
        )


def test_longest_comment_fits(vector_keys: KeyPair) -> None:
    comment = "ж" * MAX_COMMENT_CHARS
    order = TransferOrder(DEST, Nanoton(1), bounce=False, comment=comment)
    signed = sign_transfer(
        _contract(vector_keys), vector_keys, order, seqno=1, valid_until=9, deployed=True
    )
    message = MessageAny.deserialize(Cell.one_from_boc(signed.boc).begin_parse())
    body = _single_internal(message.body, WalletVersion.V5R1).body.begin_parse()
    body.load_uint(32)
    assert body.load_snake_string() == comment


def test_normalized_hash_ignores_how_the_message_was_wrapped(vector_keys: KeyPair) -> None:
    signed = sign_transfer(
        _contract(vector_keys),
        vector_keys,
        GOLDEN_ORDER,
        seqno=0,
        valid_until=0xFFFF_FFFF,
        deployed=False,
    )
    message = MessageAny.deserialize(Cell.one_from_boc(signed.boc).begin_parse())
    message.init = None  # the same body re-sent without state_init
    rewrapped = message.serialize()
    assert rewrapped.hash != signed.message_hash
    assert normalized_external_hash(rewrapped) == signed.normalized_hash


def test_normalized_hash_refuses_internal_messages() -> None:
    internal = MessageAny.deserialize(
        Builder()
        .store_uint(0, 1)
        .store_bool(True)
        .store_bool(False)
        .store_bool(False)
        .store_address(None)
        .store_address(DEST)
        .store_coins(1)
        .store_bit(0)
        .store_coins(0)
        .store_coins(0)
        .store_uint(0, 64)
        .store_uint(0, 32)
        .store_bit(0)
        .store_bit(0)
        .end_cell()
        .begin_parse()
    ).serialize()
    with pytest.raises(ValueError, match="not an external-in"):
        normalized_external_hash(internal)
