"""The proof-of-work step of the COCOON router leg, client side: parse, solve off the loop, answer.

See docs/protocol.md §2.4. Right after accepting, a proxy VM's router sends a 24-byte challenge
(magic, difficulty, 16 salt bytes); the client answers with 12 bytes (magic, nonce) such that
``SHA-256(salt ‖ nonce as 8 LE bytes)``, first 8 bytes read as a little-endian u64, has at least
``difficulty`` leading zero bits. Byte-level reference: ``tee/cocoon/pow.cpp`` upstream.

This module owns the wire format, the check, the client handshake and the choice of how to search
(one thread or worker processes, never the event loop); ``app.network.pow_search`` does the search.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import struct
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from app.network import pow_search
from app.network.pow_search import LOWS_PER_BATCH, PowWorkerError, default_workers, search_range

CHALLENGE_MAGIC = 0x418E1291  # cocoon.powSimple
ANSWER_MAGIC = 0x01827319  # cocoon.powSimpleResponse
CHALLENGE_SIZE = 24
ANSWER_SIZE = 12
SALT_SIZE = 16
MAX_DIFFICULTY = 28  # the reference client's max_pow_difficulty default
HASH_BITS = 64  # the check looks at the first 8 bytes of the hash only

_CHALLENGE = struct.Struct("<Ii16s")
_ANSWER = struct.Struct("<Iq")
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1

# Parallelism, measured on 2 cores (benchmarks/pow_solve.py, docs/performance.md): hashlib releases
# the GIL only for inputs of 2 KiB or more, so two threads hashing 24-byte messages take turns on
# one core (3.2 M hashes/s, one thread or two). Worker processes do scale and start in 25–75 ms
# (pow_search's script; a multiprocessing pool took 0.9–1.7 s under the installed entry point): at
# 19 bits one thread and two processes tie, at 20 processes take 0.19 s against 0.29 s, at 24
# 2.0 s against 3.4 s. Up to 19 bits, then, one thread; above, processes (which also leave the
# event loop's GIL alone, and gain more on a machine with more cores).
THREAD_MAX_DIFFICULTY = 19

logger = logging.getLogger(__name__)


class PowError(Exception):
    """The proof-of-work exchange with a router failed."""


class PowChallengeError(PowError, ValueError):
    """The challenge is malformed: wrong size, wrong magic or a bad salt."""


class PowDifficultyError(PowChallengeError):
    """The challenge asks for a difficulty outside what a client solves."""


class PowNonceError(PowError, ValueError):
    """A nonce outside the signed 64-bit range the wire carries."""


class PowTimeoutError(PowError, TimeoutError):
    """The server did not send its whole challenge (or take the answer) in time."""


@dataclass(frozen=True, slots=True)
class PowChallenge:
    """One server challenge: required leading zero bits and the 16-byte salt."""

    difficulty: int
    salt: bytes

    def __post_init__(self) -> None:
        _check_salt(self.salt)
        if not 0 <= self.difficulty <= MAX_DIFFICULTY:
            raise PowDifficultyError(
                f"the server asks for proof-of-work difficulty {self.difficulty}; "
                f"a client solves 0 to {MAX_DIFFICULTY} bits"
            )

    def encode(self) -> bytes:
        """The 24 bytes a server sends for this challenge."""
        return _CHALLENGE.pack(CHALLENGE_MAGIC, self.difficulty, self.salt)


@dataclass(frozen=True, slots=True)
class PowResult:
    """A finished handshake: the challenge, the nonce sent, the hashes tried and the time taken."""

    challenge: PowChallenge
    nonce: int
    hashes: int
    seconds: float


def parse_challenge(data: bytes) -> PowChallenge:
    """Decode the server's 24-byte challenge; :class:`PowChallengeError` if it is not one."""
    if len(data) != CHALLENGE_SIZE:
        raise PowChallengeError(
            f"a proof-of-work challenge is {CHALLENGE_SIZE} bytes, got {len(data)}"
        )
    magic, difficulty, salt = _CHALLENGE.unpack(data)
    if magic != CHALLENGE_MAGIC:
        raise PowChallengeError(
            f"not a proof-of-work challenge: magic {magic:#010x}, expected {CHALLENGE_MAGIC:#010x}"
        )
    return PowChallenge(difficulty, salt)


def answer_bytes(nonce: int) -> bytes:
    """The client's 12-byte answer carrying ``nonce``."""
    _check_nonce_range(nonce)
    return _ANSWER.pack(ANSWER_MAGIC, nonce)


def leading_zero_bits(salt: bytes, nonce: int) -> int:
    """Leading zero bits of ``SHA-256(salt ‖ nonce)``'s first 8 bytes read as a LE u64 (0–64)."""
    _check_salt(salt)
    _check_nonce_range(nonce)
    digest = hashlib.sha256(salt + nonce.to_bytes(8, "little", signed=True)).digest()
    return HASH_BITS - int.from_bytes(digest[:8], "little").bit_length()


def check_nonce(salt: bytes, nonce: int, difficulty: int) -> bool:
    """Whether ``nonce`` answers a challenge of ``difficulty`` bits (0–64, the server's range)."""
    if not 0 <= difficulty <= HASH_BITS:
        raise PowDifficultyError(f"difficulty must be 0 to {HASH_BITS} bits, got {difficulty}")
    return leading_zero_bits(salt, nonce) >= difficulty


async def solve(
    challenge: PowChallenge,
    *,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> int:
    """Find a nonce for ``challenge`` off the event loop; cancelling stops the search.

    ``progress`` is called on the event loop with the hashes tried so far each time a batch of
    131 072 finds nothing, so a solve that ends in its first batches reports nothing.
    ``workers`` (default: the CPUs, at most 8) is the number of processes for a hard challenge;
    1 keeps the search on a single thread.
    """
    nonce, _ = await solve_counted(challenge, progress=progress, workers=workers)
    return nonce


async def solve_counted(
    challenge: PowChallenge,
    *,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> tuple[int, int]:
    """:func:`solve`, also returning how many hashes were tried (the work actually done)."""
    count = default_workers() if workers is None else workers
    if count < 1:
        raise ValueError(f"workers must be at least 1, got {count}")
    # A frozen (PyInstaller) or embedded build has no Python to run the worker script with.
    no_python = bool(getattr(sys, "frozen", False)) or not sys.executable
    if count == 1 or no_python or challenge.difficulty <= THREAD_MAX_DIFFICULTY:
        return await _search_in_thread(challenge.salt, challenge.difficulty, progress)
    try:
        return await _search_in_processes(challenge.salt, challenge.difficulty, count, progress)
    except (PowWorkerError, OSError, NotImplementedError) as exc:
        # A host that cannot start the workers (a sandbox, a loop without subprocesses) must
        # still connect: one thread is slower, not wrong.
        logger.warning("proof of work: worker processes failed (%s); using one thread", exc)
    return await _search_in_thread(challenge.salt, challenge.difficulty, progress)


async def client_handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    timeout: float,  # noqa: ASYNC109 - bounds the network waits only, not the solve
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> PowResult:
    """Read the router's challenge, solve it and send the answer.

    ``timeout`` bounds reading the 24 challenge bytes and flushing the answer
    (:class:`PowTimeoutError`); the solve itself is bounded by :data:`MAX_DIFFICULTY`.
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    challenge = parse_challenge(await _read_challenge(reader, timeout))
    started = time.monotonic()
    nonce, hashes = await solve_counted(challenge, progress=progress, workers=workers)
    seconds = time.monotonic() - started
    writer.write(answer_bytes(nonce))
    try:
        async with asyncio.timeout(timeout):
            await writer.drain()
    except TimeoutError as exc:
        raise PowTimeoutError(
            f"the server took no proof-of-work answer within {timeout} s"
        ) from exc
    return PowResult(challenge, nonce, hashes, seconds)


async def _read_challenge(reader: asyncio.StreamReader, timeout: float) -> bytes:  # noqa: ASYNC109
    data = b""
    try:
        async with asyncio.timeout(timeout):
            while len(data) < CHALLENGE_SIZE:
                chunk = await reader.read(CHALLENGE_SIZE - len(data))
                if not chunk:
                    raise PowChallengeError(
                        f"the server closed the connection after {len(data)} of "
                        f"{CHALLENGE_SIZE} proof-of-work challenge bytes"
                    )
                data += chunk
    except TimeoutError as exc:
        raise PowTimeoutError(
            f"no proof-of-work challenge within {timeout} s "
            f"(got {len(data)} of {CHALLENGE_SIZE} bytes)"
        ) from exc
    return data


async def _search_in_thread(
    salt: bytes, difficulty: int, progress: Callable[[int], None] | None
) -> tuple[int, int]:
    """Search batch after batch on one private thread; ``(nonce, hashes tried)``."""
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(1, "pow")
    tried = 0
    first = 0
    try:
        while True:
            # One batch at a time: a queued one would start at once, holding the GIL the loop
            # needs to take the answer, and could not be cancelled.
            nonce, count = await loop.run_in_executor(
                executor,
                search_range,
                salt,
                first,
                LOWS_PER_BATCH,
                difficulty,
            )
            tried += count
            if nonce is not None:
                executor.shutdown(wait=False)
                return nonce, tried
            if progress is not None:
                progress(tried)
            first += LOWS_PER_BATCH
    except BaseException:
        # Cancelled: return only once the batch in hand (≈ 40 ms) has run out, so that nothing
        # keeps hashing behind the caller's back.
        await asyncio.shield(loop.run_in_executor(None, executor.shutdown))
        raise


async def _search_in_processes(
    salt: bytes, difficulty: int, count: int, progress: Callable[[int], None] | None
) -> tuple[int, int]:
    """Search in ``count`` worker processes, batches dealt round-robin; ``(nonce, hashes tried)``.

    Raises :class:`PowWorkerError` (or the ``OSError`` of a failed start) if a worker fails.
    """
    workers: list[asyncio.subprocess.Process] = []
    reads: dict[asyncio.Task[bytes], int] = {}
    try:
        for index in range(count):
            workers.append(await _start_worker(salt, difficulty, index, count))
        reads = {_next_line(worker): index for index, worker in enumerate(workers)}
        return await _gather_reports(workers, reads, progress)
    finally:
        # Solved, failed or cancelled: no worker outlives the call (SIGKILL is immediate).
        for read in reads:
            read.cancel()
        for worker in workers:
            if worker.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.kill()
        for worker in workers:
            await worker.wait()


async def _gather_reports(
    workers: list[asyncio.subprocess.Process],
    reads: dict[asyncio.Task[bytes], int],
    progress: Callable[[int], None] | None,
) -> tuple[int, int]:
    tried = [0] * len(workers)
    while True:
        done, _ = await asyncio.wait(reads, return_when=asyncio.FIRST_COMPLETED)
        found: int | None = None
        for read in done:
            index = reads.pop(read)
            line = read.result()
            if not line:
                raise await _worker_failure(workers[index])
            nonce, tried[index] = pow_search.parse_report(line)
            if nonce is None:
                reads[_next_line(workers[index])] = index
            elif found is None:
                found = nonce
        if found is not None:
            return found, sum(tried)
        if progress is not None:
            progress(sum(tried))


async def _start_worker(
    salt: bytes, difficulty: int, index: int, stride: int
) -> asyncio.subprocess.Process:
    # Why a script run by path, isolated (-I: no PYTHON* variables, no script folder on sys.path),
    # and not multiprocessing: a spawned child re-imports the parent's __main__, which for the
    # installed entry point is the whole CLI (0.7 s of imports; a 2-worker pool took 0.9–1.7 s to
    # start), and importing the ``app`` package alone costs 65 ms (importlib.metadata).
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        pow_search.WORKER_SCRIPT,
        salt.hex(),
        str(difficulty),
        str(index),
        str(stride),
        stdin=asyncio.subprocess.PIPE,  # never written; its end tells a worker we are gone
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def _next_line(worker: asyncio.subprocess.Process) -> asyncio.Task[bytes]:
    if worker.stdout is None:  # pragma: no cover - started with stdout=PIPE
        raise PowWorkerError("a proof-of-work worker has no output pipe")
    return asyncio.ensure_future(worker.stdout.readline())


async def _worker_failure(worker: asyncio.subprocess.Process) -> PowWorkerError:
    errors = await worker.stderr.read() if worker.stderr is not None else b""
    code = await worker.wait()
    last = errors.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
    return PowWorkerError(f"a proof-of-work worker exited ({code}) without an answer: {last[0]}")


def _check_salt(salt: bytes) -> None:
    if not isinstance(salt, bytes):
        raise PowChallengeError(f"a proof-of-work salt is bytes, got {type(salt).__name__}")
    if len(salt) != SALT_SIZE:
        raise PowChallengeError(f"a proof-of-work salt is {SALT_SIZE} bytes, got {len(salt)}")


def _check_nonce_range(nonce: int) -> None:
    # ``type(...) is int``: a bool or a float must not pass for a nonce.
    if type(nonce) is not int or not _I64_MIN <= nonce <= _I64_MAX:
        raise PowNonceError(f"a proof-of-work nonce is a signed 64-bit integer, got {nonce!r}")
