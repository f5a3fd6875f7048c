"""Runner framing: byte-exact encoding, incremental decoding of the captured streams, bad frames."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.network.framing import (
    MAX_PAYLOAD,
    FrameDecoder,
    FrameEncoder,
    FrameError,
    encode_frame,
)
from tests.unit.network.traces import TRACES_DIR, read_frames, read_records


def _header(size: int, seqno: int) -> bytes:
    return struct.pack("<Ii", size, seqno)


def test_encode_matches_spec_example() -> None:
    payload = bytes.fromhex("61427ca50807060504030201")
    assert encode_frame(0, payload).hex(" ") == (
        "0c 00 00 00 00 00 00 00 61 42 7c a5 08 07 06 05 04 03 02 01"
    )


def test_encoder_counts_from_zero() -> None:
    encoder = FrameEncoder()
    frames = [encoder.encode(b"abcd") for _ in range(3)]
    assert [struct.unpack_from("<i", f, 4)[0] for f in frames] == [0, 1, 2]
    assert encoder.next_seqno == 3


@pytest.mark.parametrize("stream", ["worker-router.w2r", "worker-router.r2w", "router-proxy.p2r"])
def test_decoder_reproduces_captured_frames_byte_by_byte(stream: str) -> None:
    records = read_records(stream)
    start = next(r.offset for r in records if r.kind == "frame")
    data = (TRACES_DIR / f"{stream}.bin").read_bytes()[start:]
    decoder = FrameDecoder()
    payloads: list[bytes] = []
    for i in range(len(data)):
        payloads += decoder.feed(data[i : i + 1])
    assert payloads == [f.payload for f in read_frames(stream)]
    assert decoder.buffered == 0


@given(st.lists(st.binary(min_size=4, max_size=300), min_size=1, max_size=20), st.data())
def test_any_split_decodes_the_same(payloads: list[bytes], data: st.DataObject) -> None:
    encoder = FrameEncoder()
    stream = b"".join(encoder.encode(p) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = FrameDecoder()
    out: list[bytes] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        out += decoder.feed(stream[prev:cut])
        prev = cut
    assert out == payloads


def test_encoder_re_encodes_the_worker_stream_exactly() -> None:
    frames = read_frames("worker-router.w2r")
    encoder = FrameEncoder()
    assert [encoder.encode(f.payload) for f in frames] == [
        _header(len(f.payload), f.seqno) + f.payload for f in frames
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_header(3, 0) + b"abc", "outside"),
        (_header(0, 0), "outside"),
        (_header(MAX_PAYLOAD + 1, 0), "outside"),
        (_header(4, 1) + b"abcd", "seqno 1, expected 0"),
        (_header(4, -1) + b"abcd", "seqno -1"),
    ],
)
def test_bad_frames_raise(raw: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        FrameDecoder().feed(raw)


def test_oversized_length_is_rejected_before_the_body_arrives() -> None:
    decoder = FrameDecoder()
    with pytest.raises(FrameError):
        decoder.feed(_header(MAX_PAYLOAD + 1, 0))


def test_max_size_frame_is_accepted() -> None:
    payload = bytes(MAX_PAYLOAD)
    assert FrameDecoder().feed(encode_frame(0, payload)) == [payload]


def test_repeated_seqno_is_an_error_after_good_frames() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(_header(4, 0) + b"abcd") == [b"abcd"]
    with pytest.raises(FrameError, match="expected 1"):
        decoder.feed(_header(4, 0) + b"abcd")


def test_decoder_stays_failed() -> None:
    decoder = FrameDecoder()
    with pytest.raises(FrameError):
        decoder.feed(_header(1, 0))
    with pytest.raises(FrameError):
        decoder.feed(_header(4, 0) + b"abcd")


def test_truncated_frame_stays_buffered() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(_header(8, 0) + b"abc") == []
    assert decoder.buffered == 11


def test_encode_rejects_payloads_the_peer_would_reject() -> None:
    with pytest.raises(FrameError):
        encode_frame(0, b"abc")
    with pytest.raises(FrameError):
        encode_frame(0, bytes(MAX_PAYLOAD + 1))


def test_frames_before_a_fault_in_the_same_read_are_delivered() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(_header(4, 0) + b"abcd" + _header(2, 1)) == [b"abcd"]
    assert decoder.error is not None
    with pytest.raises(FrameError, match="frame length 2"):
        decoder.feed(b"")
