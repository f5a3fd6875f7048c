"""TL codec speed on the streaming hot path: ``proxy.queryAnswerPartEx`` with a 128-byte chunk.

Run from the repository root: ``.venv/bin/python -m benchmarks.tl_codec``. Prints µs per call for
the schema-compiled encoders/decoder and for a naive hand-written ``struct`` codec of the same
message (the baseline), measured in the same run, and the ratio of each to its baseline.
"""

from __future__ import annotations

import platform
import struct
import timeit
from collections.abc import Callable
from typing import Any

from app.network.tl import TLObject, decode, encode, encode_query_answer_part

_PART_ID = 0x6D85B50F
_REQUEST_ID = bytes(range(32))
_CHUNK = b'{"choices":[{"delta":{"content":"hello"}}]}'.ljust(128, b" ")
_FINAL = TLObject(
    "proxy.queryFinalInfo",
    flags=2,
    tokens_used=TLObject(
        "tokensUsed",
        prompt_tokens_used=34,
        cached_tokens_used=16,
        completion_tokens_used=135,
        reasoning_tokens_used=15,
        total_tokens_used=200,
    ),
    worker_start_time=1795592935.8711464,
    worker_end_time=1795592935.8723314,
)


def naive_encode(request_id: bytes, answer: bytes, flags: int, final: TLObject | None) -> bytes:
    """The baseline: the message written out by hand with ``struct.pack``."""
    n = len(answer)
    if n < 254:
        head = struct.pack("<B", n)
        pad = -(n + 1) % 4
    else:
        head = struct.pack("<I", (n << 8) | 0xFE)
        pad = -n % 4
    out = struct.pack("<I", _PART_ID) + request_id + head + answer + b"\0" * pad
    out += struct.pack("<I", flags)
    if final is not None:
        used = final["tokens_used"]
        out += struct.pack(
            "<I5q2d",
            final["flags"],
            used["prompt_tokens_used"],
            used["cached_tokens_used"],
            used["completion_tokens_used"],
            used["reasoning_tokens_used"],
            used["total_tokens_used"],
            final["worker_start_time"],
            final["worker_end_time"],
        )
    return out


def naive_decode(data: bytes) -> tuple[bytes, bytes, int]:
    """The baseline decoder for the flags=0 form: id check, int256, bytes, flags."""
    (cid,) = struct.unpack_from("<I", data, 0)
    if cid != _PART_ID:
        raise ValueError("wrong id")
    request_id = data[4:36]
    n = data[36]
    answer = data[37 : 37 + n]
    pos = 37 + n + (-(n + 1) % 4)
    (flags,) = struct.unpack_from("<I", data, pos)
    if pos + 4 != len(data):
        raise ValueError("trailing bytes")
    return request_id, answer, flags


def _per_call_us(fn: Callable[[], Any], number: int = 20000, repeat: int = 7) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    final_args = (_REQUEST_ID, _CHUNK, 1, _FINAL)
    plain_args = (_REQUEST_ID, _CHUNK, 0, None)
    wire = encode_query_answer_part(*plain_args)
    # Both codecs must produce the same bytes, or the comparison means nothing.
    if (
        wire != naive_encode(*plain_args)
        or encode_query_answer_part(*final_args) != naive_encode(*final_args)
        or naive_decode(wire) != (_REQUEST_ID, _CHUNK, 0)
    ):
        raise SystemExit("codec and baseline disagree")

    rows = [
        (
            "encode flags=0 (hot-path helper)",
            _per_call_us(lambda: encode_query_answer_part(*plain_args)),
            _per_call_us(lambda: naive_encode(*plain_args)),
        ),
        (
            "encode flags=1 + final_info (hot-path helper)",
            _per_call_us(lambda: encode_query_answer_part(*final_args)),
            _per_call_us(lambda: naive_encode(*final_args)),
        ),
        (
            "encode flags=0 (TLObject + encode)",
            _per_call_us(
                lambda: encode(
                    TLObject(
                        "proxy.queryAnswerPartEx",
                        request_id=_REQUEST_ID,
                        answer=_CHUNK,
                        flags=0,
                    )
                )
            ),
            _per_call_us(lambda: naive_encode(*plain_args)),
        ),
        (
            "decode flags=0 (decode)",
            _per_call_us(lambda: decode(wire)),
            _per_call_us(lambda: naive_decode(wire)),
        ),
    ]
    print(f"TL codec, proxy.queryAnswerPartEx with a {len(_CHUNK)}-byte chunk")
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"{'case':48} {'codec µs':>9} {'naive µs':>9} {'ratio':>6}")
    for name, ours, naive in rows:
        print(f"{name:48} {ours:9.2f} {naive:9.2f} {ours / naive:6.2f}")


if __name__ == "__main__":
    main()
