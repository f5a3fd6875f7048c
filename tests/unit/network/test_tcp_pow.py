"""The router leg's proof of work (docs/protocol.md §2.4): wire format, check, solver, handshake."""

from __future__ import annotations

import asyncio
import hashlib
import io
import struct
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psutil
import pytest

from app.network import pow_search
from app.network.pow_search import search_range
from app.network.tcp_pow import (
    ANSWER_MAGIC,
    CHALLENGE_MAGIC,
    PowChallenge,
    PowChallengeError,
    PowDifficultyError,
    PowNonceError,
    PowTimeoutError,
    answer_bytes,
    check_nonce,
    client_handshake,
    leading_zero_bits,
    parse_challenge,
    solve,
)
from tests.unit.network.pow_server import PowServer, PowServerConfig, reference_verify
from tests.unit.network.session_fixtures import wait_for

SALT = bytes(range(16))
# Computed by a C transcription of tee/cocoon/pow.cpp (memcpy'd int64 nonce, OpenSSL SHA256,
# td::as<uint64>, count_leading_zeroes64) for SALT: PowSolver's first nonce, counting from 0.
REFERENCE_FIRST_NONCE = {8: 480, 12: 7012, 16: 84956, 20: 303607, 24: 3126366}
# The same program's leading-zero counts for single nonces, signed extremes included.
REFERENCE_ZEROS = {0: 1, 1: 0, 255: 1, 256: 0, -1: 1, 2**63 - 1: 0, -(2**63): 0, 1234567890123: 0}
# A salt whose difficulty-20 solutions all lie past the first five batches the solver hands out,
# so a two-worker solve must report progress before it finds one.
LATE_SALT = bytes([3]) * 16


def pow_workers() -> list[psutil.Process]:
    """This process's live proof-of-work worker processes."""
    found = []
    for child in psutil.Process().children():
        try:
            if any(part.endswith("pow_search.py") for part in child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def hand_zeros(salt: bytes, nonce: int) -> int:
    """Leading zero bits done another way: bytes 7…0 of the hash as a 64-character bit string."""
    digest = hashlib.sha256(salt + struct.pack("<q", nonce)).digest()
    bits = "".join(f"{byte:08b}" for byte in reversed(digest[:8]))
    return len(bits) - len(bits.lstrip("0"))


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[PowServerConfig], asyncio.Future[PowServer]]]:
    servers: list[PowServer] = []

    async def start(config: PowServerConfig) -> PowServer:
        server = PowServer(config)
        await server.start()
        servers.append(server)
        return server

    yield lambda config: asyncio.ensure_future(start(config))
    for server in servers:
        await server.aclose()


async def _connect(server: PowServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


# --- wire format ---


def test_challenge_round_trips_and_answer_layout() -> None:
    wire = struct.pack("<Ii16s", 0x418E1291, 20, SALT)
    challenge = parse_challenge(wire)
    assert challenge == PowChallenge(20, SALT)
    assert challenge.encode() == wire
    assert (CHALLENGE_MAGIC, ANSWER_MAGIC) == (0x418E1291, 0x01827319)
    assert answer_bytes(0x0102030405060708) == bytes.fromhex("19738201" + "0807060504030201")
    assert answer_bytes(-1) == bytes.fromhex("19738201") + b"\xff" * 8


@pytest.mark.parametrize("difficulty", [0, 28])
def test_difficulty_bounds_are_accepted(difficulty: int) -> None:
    assert parse_challenge(struct.pack("<Ii16s", CHALLENGE_MAGIC, difficulty, SALT)).difficulty == (
        difficulty
    )


@pytest.mark.parametrize("difficulty", [29, 64, -1, -(2**31)])
def test_difficulty_out_of_range_is_refused(difficulty: int) -> None:
    with pytest.raises(PowDifficultyError, match=f"difficulty {difficulty}; a client solves 0 to"):
        parse_challenge(struct.pack("<Ii16s", CHALLENGE_MAGIC, difficulty, SALT))


@pytest.mark.parametrize("magic", [ANSWER_MAGIC, 0, 0x91128E41])
def test_wrong_magic_is_refused(magic: int) -> None:
    with pytest.raises(PowChallengeError, match="not a proof-of-work challenge: magic"):
        parse_challenge(struct.pack("<Ii16s", magic, 20, SALT))


@pytest.mark.parametrize("size", [0, 8, 23, 25])
def test_wrong_size_challenge_is_refused(size: int) -> None:
    data = (struct.pack("<Ii16s", CHALLENGE_MAGIC, 20, SALT) + b"\0")[:size]
    with pytest.raises(PowChallengeError, match=f"24 bytes, got {size}"):
        parse_challenge(data)


@pytest.mark.parametrize("nonce", [2**63, -(2**63) - 1, True, 1.5, "7"])
def test_nonce_outside_i64_is_refused(nonce: object) -> None:
    with pytest.raises(PowNonceError, match="signed 64-bit integer"):
        answer_bytes(nonce)  # type: ignore[arg-type]


def test_bad_salt_and_check_difficulty_are_refused() -> None:
    with pytest.raises(PowChallengeError, match="16 bytes, got 15"):
        PowChallenge(8, SALT[:15])
    with pytest.raises(PowChallengeError, match="salt is bytes, got bytearray"):
        check_nonce(bytearray(SALT), 0, 8)  # type: ignore[arg-type]
    with pytest.raises(PowDifficultyError, match="0 to 64 bits, got 65"):
        check_nonce(SALT, 0, 65)


# --- the check, against independent vectors ---


@pytest.mark.parametrize(("difficulty", "nonce"), sorted(REFERENCE_FIRST_NONCE.items()))
def test_check_nonce_matches_the_reference_solver(difficulty: int, nonce: int) -> None:
    assert check_nonce(SALT, nonce, difficulty)
    assert reference_verify(SALT, nonce, difficulty)
    assert not check_nonce(SALT, nonce - 1, difficulty) or nonce == 0


def test_reference_first_nonces_are_first() -> None:
    for difficulty in (8, 12):
        first = REFERENCE_FIRST_NONCE[difficulty]
        assert not any(check_nonce(SALT, n, difficulty) for n in range(first))


def test_leading_zero_bits_matches_reference_and_hand_count() -> None:
    for nonce, zeros in REFERENCE_ZEROS.items():
        assert leading_zero_bits(SALT, nonce) == zeros == hand_zeros(SALT, nonce)
    for nonce in range(2000):
        zeros = hand_zeros(SALT, nonce)
        assert leading_zero_bits(SALT, nonce) == zeros
        for difficulty in (0, zeros, zeros + 1, 64):
            assert check_nonce(SALT, nonce, difficulty) == (zeros >= difficulty)
            assert reference_verify(SALT, nonce, difficulty) == (zeros >= difficulty)


def test_search_range_matches_the_plain_check() -> None:
    for difficulty in (0, 3, 7, 8, 9):
        nonce, tried = search_range(SALT, 0, 1, difficulty)
        assert nonce is not None
        assert check_nonce(SALT, nonce, difficulty)
        high = nonce >> 48
        assert tried == high + 1
        assert not any(check_nonce(SALT, h << 48, difficulty) for h in range(high))


# --- solving ---


@pytest.mark.parametrize("difficulty", [8, 10, 12])
async def test_solve_finds_a_nonce_the_server_accepts(difficulty: int) -> None:
    nonce = await solve(PowChallenge(difficulty, SALT))
    assert reference_verify(SALT, nonce, difficulty)


async def test_solve_in_processes_reports_progress_on_the_loop() -> None:
    calls: list[tuple[int, int]] = []
    nonce = await solve(
        PowChallenge(20, LATE_SALT),
        progress=lambda tried: calls.append((tried, threading.get_ident())),
        workers=2,
    )
    assert reference_verify(LATE_SALT, nonce, 20)
    assert calls, "a solve past its first batches reports progress"
    counts = [tried for tried, _ in calls]
    assert counts == sorted(set(counts))
    assert {thread for _, thread in calls} == {threading.get_ident()}


async def test_frozen_build_stays_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    seen: list[int] = []
    nonce = await solve(
        PowChallenge(20, LATE_SALT), progress=lambda _: seen.append(len(pow_workers())), workers=2
    )
    assert reference_verify(LATE_SALT, nonce, 20)
    assert seen
    assert set(seen) == {0}


@pytest.mark.allow_log_warnings  # the fallback logs that the worker processes failed
async def test_solve_falls_back_to_a_thread_without_python(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    nonce = await solve(PowChallenge(20, SALT), workers=2)
    assert reference_verify(SALT, nonce, 20)
    assert "worker processes failed" in caplog.text


@pytest.mark.allow_log_warnings  # the fallback logs the worker's own last words
async def test_solve_falls_back_when_a_worker_dies(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setattr(pow_search, "WORKER_SCRIPT", str(tmp_path / "missing.py"))
    nonce = await solve(PowChallenge(20, SALT), workers=2)
    assert reference_verify(SALT, nonce, 20)
    assert "exited (2) without an answer" in caplog.text
    assert "missing.py" in caplog.text
    assert not pow_workers()


@pytest.mark.parametrize("line", [b"", b"tried\n", b"tried x\n", b"found 1\n", b"hello 1 2\n"])
def test_a_garbled_worker_report_is_refused(line: bytes) -> None:
    with pytest.raises(pow_search.PowWorkerError, match="worker wrote"):
        pow_search.parse_report(line)


def test_worker_main_reports_a_valid_nonce(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # After its report a worker waits for its stdin to end (the parent kills it first).
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert pow_search._worker_main([SALT.hex(), "12", "1", "3"]) == 0
    kind, nonce, tried = capsys.readouterr().out.split()
    assert kind == "found"
    assert check_nonce(SALT, int(nonce), 12)
    batch = (int(nonce) & (1 << 48) - 1) // pow_search.LOWS_PER_BATCH
    assert batch % 3 == 1  # worker 1 of 3 searches batches 1, 4, 7, …
    assert int(tried) >= 1


def test_worker_main_refuses_bad_arguments() -> None:
    with pytest.raises(SystemExit, match="bad worker arguments"):
        pow_search._worker_main([SALT[:8].hex(), "12", "0", "1"])


async def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        await solve(PowChallenge(8, SALT), workers=0)


async def _start_hard_solve(workers: int) -> tuple[asyncio.Task[int], list[int]]:
    calls: list[int] = []
    task = asyncio.create_task(
        solve(PowChallenge(28, SALT), progress=calls.append, workers=workers)
    )
    await wait_for(lambda: bool(calls), "the first progress report", limit=60)
    return task, calls


async def test_cancelling_stops_the_worker_processes() -> None:
    task, calls = await _start_hard_solve(workers=2)
    workers = pow_workers()
    assert len(workers) == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    reported = len(calls)
    assert not pow_workers()
    assert not any(worker.is_running() for worker in workers)
    await asyncio.sleep(0)
    assert len(calls) == reported


async def test_cancelling_stops_the_worker_thread() -> None:
    task, _ = await _start_hard_solve(workers=1)
    assert any(t.name.startswith("pow") for t in threading.enumerate())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not any(t.name.startswith("pow") for t in threading.enumerate())


# --- the handshake against the reference-like server ---


@pytest.mark.parametrize("difficulty", [8, 12])
async def test_handshake_is_accepted_then_bytes_flow(
    serve: Callable[[PowServerConfig], asyncio.Future[PowServer]], difficulty: int
) -> None:
    server = await serve(PowServerConfig(difficulty=difficulty))
    reader, writer = await _connect(server)
    result = await client_handshake(reader, writer, timeout=10)
    verdict = await server.verdicts.get()
    assert verdict.accepted, verdict.reason
    assert verdict.nonce == result.nonce
    assert result.challenge == PowChallenge(difficulty, server.config.salt)
    assert result.hashes >= 1
    writer.write(b"after the proof")
    assert await reader.readexactly(15) == b"after the proof"
    writer.close()


async def test_handshake_with_processes_reports_progress(
    serve: Callable[[PowServerConfig], asyncio.Future[PowServer]],
) -> None:
    server = await serve(PowServerConfig(difficulty=20, salt=LATE_SALT))
    reader, writer = await _connect(server)
    calls: list[int] = []
    result = await client_handshake(reader, writer, timeout=10, progress=calls.append, workers=2)
    assert (await server.verdicts.get()).accepted
    assert calls
    assert result.hashes > calls[-1]
    writer.close()


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        (PowServerConfig(difficulty=29), PowDifficultyError, "difficulty 29"),
        (PowServerConfig(difficulty=-1), PowDifficultyError, "difficulty -1"),
        (PowServerConfig(magic=0x12345678), PowChallengeError, "magic 0x12345678"),
        (PowServerConfig(send_bytes=10, hang_up=True), PowChallengeError, "after 10 of 24"),
        (PowServerConfig(send_bytes=0, hang_up=True), PowChallengeError, "after 0 of 24"),
    ],
)
async def test_handshake_refuses_a_bad_challenge(
    serve: Callable[[PowServerConfig], asyncio.Future[PowServer]],
    config: PowServerConfig,
    error: type[Exception],
    message: str,
) -> None:
    server = await serve(config)
    reader, writer = await _connect(server)
    with pytest.raises(error, match=message):
        await client_handshake(reader, writer, timeout=10)
    writer.close()


async def test_server_stalling_mid_challenge_times_out(
    serve: Callable[[PowServerConfig], asyncio.Future[PowServer]],
) -> None:
    server = await serve(PowServerConfig(send_bytes=10))
    reader, writer = await _connect(server)
    with pytest.raises(PowTimeoutError, match=r"within 0.2 s \(got 10 of 24 bytes\)"):
        await client_handshake(reader, writer, timeout=0.2)
    writer.close()


async def test_server_rejects_a_wrong_answer(
    serve: Callable[[PowServerConfig], asyncio.Future[PowServer]],
) -> None:
    server = await serve(PowServerConfig(difficulty=24, salt=SALT))
    reader, writer = await _connect(server)
    await reader.readexactly(24)
    writer.write(answer_bytes(REFERENCE_FIRST_NONCE[24] - 1))
    assert (await server.verdicts.get()).reason == "PoW verification failed"
    writer.close()


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
async def test_handshake_needs_a_positive_timeout(bad: float) -> None:
    reader = asyncio.StreamReader()
    with pytest.raises(ValueError, match="positive number of seconds"):
        await client_handshake(reader, None, timeout=bad)  # type: ignore[arg-type]
