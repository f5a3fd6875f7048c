"""The engine child as the supervisor runs it: ready line, Unix socket or keyed TCP, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.unit.engine.test_server_api import model_path

pytestmark = [pytest.mark.engine, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


async def start(*args: str) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.engine.server",
        "--model",
        str(model_path()),
        "--ctx",
        "128",
        "--parallel",
        "2",
        "--threads",
        "1",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 120)
    return proc, json.loads(line)


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, bytes]:
    proc.send_signal(signal.SIGTERM)
    assert proc.stderr is not None
    stderr = await proc.stderr.read()
    return await asyncio.wait_for(proc.wait(), 60), stderr


async def test_unix_socket_ready_line_and_clean_sigterm(tmp_path: Path) -> None:
    sock = tmp_path / "engine.sock"
    proc, ready = await start("--uds", str(sock))
    try:
        assert ready["event"] == "ready"
        assert ready["parallel"] == 2
        assert ready["uds"] == str(sock)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        connector = aiohttp.UnixConnector(path=str(sock))
        async with aiohttp.ClientSession(connector=connector) as session:
            body = {"prompt": "Hello, my name is", "max_tokens": 3}
            async with session.post("http://engine/v1/completions", json=body) as response:
                answer = await response.json()
        assert answer["usage"]["completion_tokens"] == 3
    finally:
        code, stderr = await stop(proc)
    assert code == 0
    assert not sock.exists()
    assert b"my name is" not in stderr  # prompts never reach the log


async def test_tcp_requires_the_bearer_key(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("k3y-0123456789abcdef\n")
    proc, ready = await start("--host", "127.0.0.1", "--port", "0", "--api-key-file", str(key_file))
    try:
        url = f"http://127.0.0.1:{ready['port']}/v1/models"
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as response:
                assert response.status == 401
                assert (await response.json())["error"]["type"] == "authentication_error"
            wrong = {"Authorization": "Bearer nope"}
            async with session.get(url, headers=wrong) as response:
                assert response.status == 401
            right = {"Authorization": "Bearer k3y-0123456789abcdef"}
            async with session.get(url, headers=right) as response:
                assert response.status == 200
    finally:
        code, stderr = await stop(proc)
    assert code == 0
    assert b"k3y-0123456789abcdef" not in stderr


async def test_bad_command_line_exits_2_without_listening(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.engine.server",
        "--model",
        str(tmp_path / "none.gguf"),
        "--uds",
        str(tmp_path / "s"),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, err = await proc.communicate()
    assert proc.returncode == 2
    assert out == b""
    assert b"--model" in err


async def test_sigterm_lets_a_running_request_finish(tmp_path: Path) -> None:
    sock = tmp_path / "engine.sock"
    proc, _ = await start("--uds", str(sock), "--shutdown-grace", "30")
    connector = aiohttp.UnixConnector(path=str(sock))
    async with aiohttp.ClientSession(connector=connector) as session:
        body = {
            "prompt": "Once upon a time",
            "max_tokens": 40,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        async with session.post("http://engine/v1/completions", json=body) as response:
            first = await response.content.readline()
            assert first.startswith(b"data: ")
            proc.send_signal(signal.SIGTERM)  # while the answer is streaming
            rest = await response.read()
    assert rest.rstrip().endswith(b"data: [DONE]")
    assert b'"completion_tokens":40' in rest
    assert proc.stderr is not None
    await proc.stderr.read()
    assert await asyncio.wait_for(proc.wait(), 60) == 0
