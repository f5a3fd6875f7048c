"""The engine sandbox, proved from inside: a probe program tries what a hijacked engine would."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.engine.sandbox import (
    ResourceLimits,
    SandboxLevel,
    SandboxReport,
    detect_sandbox,
    engine_env,
    process_limit,
    sandbox_command,
)

PROBE = Path(__file__).resolve().parent / "programs" / "sandbox_probe.py"
BASIC = SandboxReport(SandboxLevel.BASIC, "test")
LIMITS = ResourceLimits(address_space=3 << 30, open_files=256, processes=None)

needs_bwrap = pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("bwrap") is None,
    reason="bubblewrap is not installed (apt-get install bubblewrap); the strong level needs it",
)


@pytest.fixture
async def listener() -> AsyncIterator[str]:
    """A real server on the host's loopback that the sandboxed probe tries to reach."""

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    async with server:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary $HOME holding a private marker file, plus a secret in the environment."""
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "wallet-marker.txt").write_text("private")
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.setenv("COCOON_TEST_SECRET", "do-not-leak")
    return folder


async def run_probe(
    report: SandboxReport, address: str, home: Path, writable: Path, write_to: Path | None = None
) -> Any:
    target = write_to or writable / "out.txt"
    argv = sandbox_command(
        report,
        [
            sys.executable,
            str(PROBE),
            "--connect",
            address,
            "--read",
            str(home / "wallet-marker.txt"),
            "--write",
            str(target),
        ],
        read_only=[PROBE],
        read_write=[writable],
        limits=LIMITS,
    )
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=engine_env(),
        start_new_session=True,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


@needs_bwrap
def test_detect_finds_a_working_bubblewrap() -> None:
    report = detect_sandbox()
    assert report.level is SandboxLevel.STRONG, report.reason
    assert report.bwrap is not None


def test_detect_without_bubblewrap_falls_back_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no bwrap anywhere
    report = detect_sandbox()
    assert report.level is SandboxLevel.BASIC
    assert "not installed" in report.reason


def test_detect_with_a_broken_bubblewrap_falls_back_with_a_reason(tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    report = detect_sandbox(str(fake))
    assert report.level is SandboxLevel.BASIC
    assert "setting up uid map: Permission denied" in report.reason


@needs_bwrap
async def test_strong_sandbox_has_no_network_and_no_home(
    listener: str, home: Path, tmp_path: Path
) -> None:
    writable = tmp_path / "run"
    writable.mkdir()
    result = await run_probe(detect_sandbox(), listener, home, writable)
    assert result["connect"].startswith("failed"), "reached the host's loopback server"
    assert result["read"] == "failed: FileNotFoundError", "read a file in the user's home"
    assert result["write"] == "wrote"  # only the bound run folder is writable
    assert (writable / "out.txt").read_text() == "x"
    assert result["no_new_privs"] == "1"
    assert result["rlimit_as"] == LIMITS.address_space
    assert result["rlimit_nofile"] == LIMITS.open_files
    assert result["home"] == "/tmp"
    assert result["env_secret"] is None


@needs_bwrap
async def test_strong_sandbox_cannot_write_next_to_its_own_program(
    listener: str, home: Path, tmp_path: Path
) -> None:
    # Only the program file is bound; its folder inside is a mount point on the read-only root,
    # so the write fails there. A checkout under /tmp (CI clones) has that folder on the
    # sandbox's private /tmp tmpfs instead: the write lands there and vanishes. Either way the
    # host's folder never changes, which is the property that matters.
    writable = tmp_path / "run"
    writable.mkdir()
    target = PROBE.parent / "out.txt"
    result = await run_probe(detect_sandbox(), listener, home, writable, write_to=target)
    assert not target.exists()
    if not PROBE.resolve().is_relative_to("/tmp"):
        assert result["write"] in ("failed: OSError", "failed: PermissionError")


async def test_basic_level_applies_limits_and_a_clean_environment(
    listener: str, home: Path, tmp_path: Path
) -> None:
    result = await run_probe(BASIC, listener, home, tmp_path)
    # The basic level cannot hide the network or the home folder (which is why it needs the
    # API key and loopback only); the probe reaching both shows the strong test is meaningful.
    assert result["connect"] == "connected"
    assert result["read"] == "read: private"
    assert result["rlimit_as"] == LIMITS.address_space
    assert result["rlimit_nofile"] == LIMITS.open_files
    assert result["env_secret"] is None
    assert result["sid_is_own"] is True


def test_limits_launcher_needs_a_program() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app.engine.sandbox", "--nofile", "64"],
        capture_output=True,
        env=engine_env(),
        check=False,
    )
    assert done.returncode == 2
    assert b"give the program to run after '--'" in done.stderr


def test_limits_launcher_execs_the_program_with_the_limits() -> None:
    nproc = process_limit()
    assert nproc is not None
    assert nproc > 1024  # the user's current tasks plus the engine's headroom
    code = (
        "import resource as r; print(r.getrlimit(r.RLIMIT_NOFILE)[0], "
        "r.getrlimit(r.RLIMIT_NPROC)[0])"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.engine.sandbox",
            "--nofile",
            "64",
            "--nproc",
            str(nproc),
            "--",
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        env=engine_env(),
        check=True,
    )
    assert done.stdout.split() == [b"64", str(nproc).encode()]


def test_engine_env_carries_nothing_of_the_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    env = engine_env({"CUDA_VISIBLE_DEVICES": "1"})
    assert "HF_TOKEN" not in env
    assert "HTTPS_PROXY" not in env
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert Path(env["PYTHONPATH"], "app", "__init__.py").is_file()


@needs_bwrap
def test_strong_command_binds_only_what_it_is_given(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    argv = sandbox_command(detect_sandbox(), ["prog"], read_only=[model], read_write=[tmp_path])
    joined = " ".join(argv)
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--cap-drop ALL"):
        assert flag in joined
    assert "--share-net" not in argv
    assert f"--ro-bind {model} {model}" in joined
    assert f"--bind {tmp_path} {tmp_path}" in joined
    assert f"--bind {os.environ.get('HOME', '/root')} " not in joined
    assert argv[-1] == "prog"
