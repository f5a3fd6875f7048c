"""The proof-of-work nonce search (docs/protocol.md §2.4): the hashing loop and the worker script.

``app.network.tcp_pow`` runs :func:`search_range` on a thread, or starts this file as worker
processes (``python -I pow_search.py SALT_HEX DIFFICULTY INDEX STRIDE``, :func:`_worker_main`)
and reads their one-line reports. A worker imports only what this module does: ``hashlib``,
``os`` and ``sys`` (asyncio alone would add 55 ms to each start), never the ``app`` package.
"""

from __future__ import annotations

import hashlib
import os
import sys

# The search walks the two high bytes of the nonce fastest: salt ‖ the six low bytes is then a fixed
# 22-byte prefix, hashed once, and each try is ``copy()`` + a 2-byte ``update``. Copying a primed
# OpenSSL context skips the per-object digest fetch and init a fresh ``sha256(data)`` pays: about
# 300 ns a try against 400 ns (2-core x86_64, CPython 3.11, OpenSSL 3.0). Only 15 of the 16 high
# bits are used so that every nonce stays a non-negative i64.
_HIGH_BITS = 15
_HIGH_SPAN = 1 << _HIGH_BITS
_HIGH_TAILS = tuple(high.to_bytes(2, "little") for high in range(_HIGH_SPAN))
LOWS_PER_BATCH = 4
BATCH_HASHES = LOWS_PER_BATCH * _HIGH_SPAN  # 131 072 tries, ≈ 40 ms: the unit of progress
_MAX_WORKERS = 8
WORKER_SCRIPT = os.path.abspath(__file__)


class PowWorkerError(RuntimeError):
    """A worker process failed or wrote something that is not a report."""


def search_range(salt: bytes, first_low: int, lows: int, difficulty: int) -> tuple[int | None, int]:
    """Try every nonce whose low 48 bits are in ``[first_low, first_low + lows)``.

    Returns the first valid nonce found (or None) and how many hashes were tried. The caller
    validates ``salt`` (16 bytes) and ``difficulty`` (0–64).
    """
    limit = 1 << (64 - difficulty)  # valid ⇔ the hash's first 8 bytes, as a LE u64, are below this
    top_bound = 1 << max(0, 8 - difficulty)  # byte 7 is the u64's top byte: a cheap pre-filter
    sha256 = hashlib.sha256
    tails = _HIGH_TAILS
    tried = 0
    for low in range(first_low, first_low + lows):
        copy = sha256(salt + low.to_bytes(6, "little")).copy
        for tail in tails:
            h = copy()
            h.update(tail)
            digest = h.digest()
            if digest[7] < top_bound and int.from_bytes(digest[:8], "little") < limit:
                high = int.from_bytes(tail, "little")
                return low | high << 48, tried + high + 1
        tried += _HIGH_SPAN
    return None, tried


def default_workers() -> int:
    """How many worker processes a hard solve uses: the CPUs this process may run on, capped."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _MAX_WORKERS))


def parse_report(line: bytes) -> tuple[int | None, int]:
    """A worker's line: ``tried N`` after a batch, or ``found NONCE N`` at the end."""
    match line.split():
        case [b"tried", tried] if tried.isdigit():
            return None, int(tried)
        case [b"found", nonce, tried] if nonce.isdigit() and tried.isdigit():
            return int(nonce), int(tried)
    raise PowWorkerError(f"a proof-of-work worker wrote {line[:80]!r}")


def _worker_main(argv: list[str]) -> int:
    """One worker process: search batches ``index``, ``index + stride``, … and report each.

    Arguments: salt (hex), difficulty, index, stride.
    Writes ``tried N`` after every batch that found nothing and ``found NONCE N`` when done;
    the parent kills every worker once one has an answer.
    """
    salt_hex, difficulty_text, index, stride = argv
    salt, difficulty = bytes.fromhex(salt_hex), int(difficulty_text)
    if len(salt) != 16 or not 0 <= difficulty <= 64:
        raise SystemExit(f"bad worker arguments: {argv}")
    batch, step, tried = int(index), int(stride), 0
    out = sys.stdout
    try:
        while True:
            nonce, count = search_range(salt, batch * LOWS_PER_BATCH, LOWS_PER_BATCH, difficulty)
            tried += count
            if nonce is not None:
                out.write(f"found {nonce} {tried}\n")
                out.flush()
                # Then wait to be killed (or for the parent to go): a worker that exits by itself
                # races the parent's kill, whose poll can reap it before asyncio's child watcher
                # does ("Unknown child process pid", a logged warning).
                sys.stdin.buffer.read()
                return 0
            # Also how a worker notices its parent is gone: the write fails, and it stops.
            out.write(f"tried {tried}\n")
            out.flush()
            batch += step
    except BrokenPipeError:
        # As the Python docs advise for SIGPIPE: point stdout at devnull so exit does not retry.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
