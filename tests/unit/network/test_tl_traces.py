"""The codec against the real frames captured from the reference COCOON stack (test fixtures)."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from app.network.tl import TLObject, decode, encode
from tests.unit.network.traces import (
    STREAMS,
    Frame,
    all_frames,
    read_frame_annotations,
    read_frames,
    read_records,
    traces_dir,
)

# Bytes fields that carry another boxed TL object, by (combinator, field).
_NESTED_TL = {
    ("tcp.packet", "data"),
    ("tcp.query", "data"),
    ("tcp.queryAnswer", "data"),
    ("proxy.runQueryEx", "query"),
    ("proxy.queryAnswerEx", "answer"),
}


def _decode_deep(payload: bytes) -> TLObject:
    """Decode a frame payload and, recursively, every nested TL object carried as bytes."""
    return _expand(decode(payload, expect="tcp.Packet"))


def _expand(obj: TLObject) -> TLObject:
    changes: dict[str, Any] = {}
    for name, value in obj.fields.items():
        if (obj.name, name) in _NESTED_TL:
            inner = decode(value)
            assert encode(inner) == value, f"{obj.name}.{name} does not re-encode exactly"
            changes[name] = _expand(inner)
    return obj.replace(**changes) if changes else obj


def _assert_tree(value: Any, expected: Any, path: str) -> None:
    """Compare a decoded value with the ``decoded`` tree of a ``*.frames.jsonl`` record."""
    if isinstance(expected, dict) and "_" in expected:
        assert isinstance(value, TLObject), path
        assert value.name == expected["_"], path
        assert f"{value.id:#010x}" == expected["_id"], path
        expected_fields = {k: v for k, v in expected.items() if k not in ("_", "_id")}
        assert set(value.fields) == set(expected_fields), path
        for key, sub in expected_fields.items():
            _assert_tree(value[key], sub, f"{path}.{key}")
    elif isinstance(expected, dict):
        _assert_bytes(value, expected, path)
    elif isinstance(expected, list):
        assert isinstance(value, list), path
        assert len(value) == len(expected), path
        for i, (item, sub) in enumerate(zip(value, expected, strict=True)):
            _assert_tree(item, sub, f"{path}[{i}]")
    elif isinstance(value, bytes):  # int256 is written as hex
        assert value.hex() == expected, path
    else:
        assert type(value) is type(expected), path
        assert value == expected, path


def _assert_bytes(value: Any, expected: dict[str, Any], path: str) -> None:
    assert isinstance(value, bytes), path
    assert len(value) == expected["len"], path
    if "tl" in expected:
        _assert_tree(decode(value), expected["tl"], path)
        return
    if "text" in expected:
        assert value.decode("utf-8") == expected["text"], path
    elif "hex" in expected:
        assert value.hex() == expected["hex"], path
    else:  # proxy.signedPayment.data: a BOC the fixture also shows as hex
        assert value.hex() == expected["boc_hex"], path


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    return all_frames()


def test_every_captured_frame_decodes_and_reencodes_exactly(frames: list[Frame]) -> None:
    assert len(frames) == 180
    for frame in frames:
        obj = decode(frame.payload, expect="tcp.Packet")
        assert encode(obj) == frame.payload, f"{frame.stream}@{frame.offset}"
        _decode_deep(frame.payload)  # nested objects re-encode exactly too


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_decoded_frames_match_the_annotated_trees(stream: str) -> None:
    annotated = [r for r in read_frame_annotations(stream) if r["record"] == "frame"]
    frames = read_frames(stream)
    assert len(frames) == len(annotated)
    for frame, record in zip(frames, annotated, strict=True):
        where = f"{stream}@{frame.offset}"
        assert (frame.offset, frame.length, frame.seqno) == (
            record["offset"],
            record["length"],
            record["seqno"],
        ), where
        assert len(frame.payload) == record["payload_len"], where
        obj = decode(frame.payload)
        assert obj.name == record["constructor"], where
        assert f"{obj.id:#010x}" == record["id"], where
        if "inner" in record:
            inner = decode(obj["data"])
            assert inner.name == record["inner"], where
            assert f"{inner.id:#010x}" == record["inner_id"], where
        _assert_tree(obj, record["decoded"], where)


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_stream_records_sit_at_the_annotated_offsets(stream: str) -> None:
    annotated = read_frame_annotations(stream)
    records = read_records(stream)
    assert [(r.kind, r.offset, len(r.raw)) for r in records] == [
        (a["record"], a["offset"], a["length"]) for a in annotated
    ]
    for record, note in zip(records, annotated, strict=True):
        if "hex" in note:
            assert record.raw.hex() == note["hex"]


def test_sequence_numbers_count_from_zero_per_direction() -> None:
    for stream in STREAMS:
        seqnos = [frame.seqno for frame in read_frames(stream)]
        assert seqnos == list(range(len(seqnos))), stream


def test_the_router_relays_frame_bytes_unchanged() -> None:
    traces = traces_dir()
    w2r = (traces / "worker-router.w2r.bin").read_bytes()
    r2w = (traces / "worker-router.r2w.bin").read_bytes()
    r2p = (traces / "router-proxy.r2p.bin").read_bytes()
    p2r = (traces / "router-proxy.p2r.bin").read_bytes()
    assert w2r[13:] == r2p[124:]
    assert r2w[136:] == p2r


def test_attested_peer_info_records_are_length_framed_without_seqno() -> None:
    for stream in ("worker-router.r2w", "router-proxy.r2p"):
        (record,) = [r for r in read_records(stream) if r.kind == "attested_peer_info"]
        (body_len,) = struct.unpack_from("<I", record.raw)
        assert body_len == 120 == len(record.raw) - 4
        # i32 has_attestation = 0, the 48-byte collateral root hash, a TL string of 32 bytes.
        assert record.raw[4:8] == bytes(4)
        assert record.raw[8:56] == bytes(48)
        assert record.raw[56] == 32


def test_first_frames_are_the_connect_handshake(frames: list[Frame]) -> None:
    w2r = read_frames("worker-router.w2r")
    r2w = read_frames("worker-router.r2w")
    connect = decode(w2r[0].payload, expect="tcp.connect")
    connected = decode(r2w[0].payload, expect="tcp.connected")
    assert connect["id"] == connected["id"] == 2523201086410396883
    query = decode(w2r[1].payload, expect="tcp.query")
    params = decode(query["data"], expect="worker.connectToProxy")["params"]
    assert params.name == "worker.params"
    assert params["flags"] == 3
    assert params["coefficient"] == 1500
    assert params["is_test"] is True
    assert (params["min_proto_version"], params["max_proto_version"]) == (1, 2)
