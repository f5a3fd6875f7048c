"""The command lines of the README and ``docs/``, run as written, so the docs cannot drift.

A fenced ``sh`` block preceded by ``<!-- doc-test -->`` has every ``cocoon-provider …`` line run
against a temporary data folder, with the loopback rig the docs describe standing in for the
user's machines: a test-mode proxy on ``127.0.0.1:11003`` (plain TCP, like ``cocoon-provider
devnet``) with a COCOON router in front of it on ``127.0.0.1:11001`` (proof of work + RA-TLS, as a
reference test network's proxy is reached), an OpenAI-compatible server on ``127.0.0.1:8000``
serving ``Qwen/Qwen3-8B``, and ``fake-ton-config.json`` (naming the router's port) in the working
folder.
A serving command (``run --headless``) counts as working once it prints a status line that says it
is earning and then stops cleanly on SIGINT. Every other ``sh`` block must say why it is not run
(``<!-- doc-test: skip REASON -->``), so a new example cannot slip past unchecked.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.devnet.local_network import LocalNetwork
from app.devnet.mock_backend import MockBackend, MockBackendConfig
from tests.router_rig import TestRouter
from tests.unit.network.traces import traces_dir

ROOT = Path(__file__).parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ROUTER_PORT = 11001
PROXY_PORT = 11003
BACKEND_PORT = 8000
MARK_RUN = "<!-- doc-test -->"
MARK_SKIP = re.compile(r"<!-- doc-test: skip (?P<reason>.+?) -->")
SERVE_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class DocCommand:
    """One ``cocoon-provider`` command line of a marked block."""

    where: str
    argv: tuple[str, ...]

    @property
    def serves(self) -> bool:
        return "run" in self.argv and "--headless" in self.argv


@dataclass(frozen=True, slots=True)
class ShBlock:
    """A fenced ``sh`` block: where it starts, its marker line (if any) and its text."""

    where: str
    marker: str
    text: str


def sh_blocks(path: Path) -> list[ShBlock]:
    """Every fenced ``sh`` block of a Markdown file, with the line just above its fence."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[ShBlock] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() in ("```sh", "```bash", "```shell"):
            start = i
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            marker = lines[start - 1].strip() if start > 0 else ""
            where = f"{path.relative_to(ROOT)}:{start + 1}"
            blocks.append(ShBlock(where, marker, "\n".join(lines[start + 1 : end])))
            i = end
        i += 1
    return blocks


def commands_of(block: ShBlock) -> list[DocCommand]:
    """The ``cocoon-provider`` lines of a block (continuations joined, comments dropped)."""
    joined = block.text.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        argv = shlex.split(line, comments=True)
        if argv and argv[0] == "cocoon-provider":
            found.append(DocCommand(block.where, tuple(argv[1:])))
    return found


def marked_commands() -> list[DocCommand]:
    return [
        command
        for path in DOCS
        for block in sh_blocks(path)
        if block.marker == MARK_RUN
        for command in commands_of(block)
    ]


def test_every_sh_block_is_run_or_says_why_not() -> None:
    unmarked = [
        block.where
        for path in DOCS
        for block in sh_blocks(path)
        if block.marker != MARK_RUN and not MARK_SKIP.fullmatch(block.marker)
    ]
    assert unmarked == [], f"mark these blocks {MARK_RUN} or '<!-- doc-test: skip why -->'"


def test_the_marked_blocks_hold_commands() -> None:
    # A marker over a block with no command line would run nothing and prove nothing.
    for path in DOCS:
        for block in sh_blocks(path):
            if block.marker == MARK_RUN:
                assert commands_of(block), f"{block.where}: a doc-test block with no command"


def test_the_readme_examples_are_under_test() -> None:
    wheres = {command.where.split(":")[0] for command in marked_commands()}
    assert "README.md" in wheres
    assert any(command.serves for command in marked_commands())


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Path]:
    """The machines the docs' examples talk to, on loopback; yields the working folder."""
    network = LocalNetwork(demand_per_minute=0, proxy_port=PROXY_PORT)
    backend = MockBackend(MockBackendConfig(mode="json"), port=BACKEND_PORT)
    router = TestRouter(("127.0.0.1", PROXY_PORT), port=ROUTER_PORT)
    try:
        await network.start()
        await backend.start()
        await router.start()
    except OSError as exc:  # pragma: no cover - only when something else holds the ports
        await network.aclose()
        await backend.aclose()
        pytest.fail(f"the docs' example ports are taken: {exc}")
    config = json.loads((traces_dir() / "configs" / "fake-ton-config.json").read_text())
    for proxy in config["registered_proxies"]:
        proxy["address"] = f"127.0.0.1:{ROUTER_PORT} 127.0.0.1:9"
    work = tmp_path / "work"
    work.mkdir()
    (work / "fake-ton-config.json").write_text(json.dumps(config))
    try:
        yield work
    finally:
        await router.aclose()
        await backend.aclose()
        await network.aclose()


def _with_temporary_data_dir(argv: tuple[str, ...], data_dir: Path) -> list[str]:
    """The command with any ``--data-dir`` pointed at ``data_dir`` (added when absent)."""
    out: list[str] = []
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
            continue
        if arg == "--data-dir":
            skip_next = True
            continue
        if arg.startswith("--data-dir="):
            continue
        out.append(arg)
    return [*out, "--data-dir", str(data_dir)]


async def _run(command: DocCommand, work: Path, data_dir: Path) -> tuple[int, str]:
    argv = _with_temporary_data_dir(command.argv, data_dir)
    env = {**os.environ, "COCOON_PROVIDER_QUIET_LOGS": "1", "QT_QPA_PLATFORM": "offscreen"}
    env.pop("DISPLAY", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *argv,
        cwd=work,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    output: list[str] = []
    if command.serves:

        async def until_earning() -> None:
            assert process.stdout is not None
            while line := (await process.stdout.readline()).decode():
                output.append(line)
                if line.startswith("[") and "earning" in line:
                    process.send_signal(signal.SIGINT)

        await asyncio.wait_for(until_earning(), SERVE_TIMEOUT_S)
    else:
        output.append((await asyncio.wait_for(process.stdout.read(), SERVE_TIMEOUT_S)).decode())
    return await process.wait(), "".join(output)


@pytest.mark.slow
@pytest.mark.allow_log_warnings  # the custom network's wallet is offline here (no liteservers)
@pytest.mark.parametrize("command", marked_commands(), ids=lambda c: " ".join(c.argv)[:60])
async def test_a_documented_command_runs_as_written(
    command: DocCommand, rig: Path, tmp_path: Path
) -> None:
    code, output = await _run(command, rig, tmp_path / "data")
    assert "Traceback" not in output, output
    assert code == 0, f"{command.where}: cocoon-provider {' '.join(command.argv)}\n{output}"
    if command.serves:
        assert "stopped" in output, output
