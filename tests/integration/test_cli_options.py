"""Global options where people type them, every network for every wallet command, and no
tracebacks for people: one ``Error:`` line, the details in the log file."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from app.cli.main import build_parser, main
from app.devnet.local_network import LocalNetwork
from app.devnet.mock_backend import MockBackend, MockBackendConfig
from tests.polling import eventually

ROOT = Path(__file__).parents[2]
NETWORKS = ("devnet", "testnet", "mainnet", "custom")


def _python_m_app(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


BEFORE = "--data-dir A --network custom --log-level debug doctor"
AFTER = "doctor --data-dir A --network custom --log-level debug"
TWICE = "--data-dir B --network mainnet --log-level ERROR doctor --data-dir A --network custom"
MIXED = "--network custom doctor --log-level=DEBUG --data-dir=A"


@pytest.mark.parametrize("line", [BEFORE, AFTER, TWICE + " --log-level DEBUG", MIXED])
def test_global_options_before_or_after_the_command_and_the_later_wins(line: str) -> None:
    # Before: options after the sub-command were "unrecognized arguments" (exit 2).
    args = build_parser().parse_args(line.split())
    assert (args.command, args.data_dir, args.network, args.log_level) == (
        "doctor",
        Path("A"),
        "custom",
        "DEBUG",
    )


def test_global_options_after_a_nested_command() -> None:
    args = build_parser().parse_args(["wallet", "address", "--network", "testnet"])
    assert (args.network, args.data_dir, args.log_level) == ("testnet", None, "INFO")


@pytest.mark.parametrize(
    "where", [["--version"], ["doctor", "--version"], ["wallet", "send", "--version"]]
)
def test_version_anywhere(where: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(where)
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("cocoon-provider ")


def test_the_readme_headless_example_parses_with_data_dir_last() -> None:
    argv = "run --headless --network custom --proxy 127.0.0.1:11001 --data-dir /srv/worker1"
    args = build_parser().parse_args(argv.split())
    assert (args.headless, args.network, args.data_dir) == (True, "custom", Path("/srv/worker1"))


@pytest.mark.parametrize("network", NETWORKS)
def test_wallet_address_on_every_network(network: str, tmp_path: Path) -> None:
    # Before: --network custom ended in "ValueError: unknown network 'custom'" (a traceback).
    options = ["--data-dir", str(tmp_path), "--network", network]
    created = _python_m_app(
        *options, "wallet", "create", "--password-stdin", stdin="a long enough password\n"
    )
    assert created.returncode == 0, created.stderr
    shown = _python_m_app("wallet", "address", "--network", network, "--data-dir", str(tmp_path))
    assert shown.returncode == 0, shown.stderr
    address = shown.stdout.strip()
    # Only mainnet holds real money; every other network uses testnet addresses.
    assert address[:2] == ("UQ" if network == "mainnet" else "0Q")
    assert "Traceback" not in created.stderr + shown.stderr


@pytest.mark.allow_log_warnings  # the unexpected error is logged, with its traceback
def test_an_unexpected_error_is_one_line_and_the_traceback_goes_to_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_: object) -> int:
        raise RuntimeError("something inside broke")

    monkeypatch.setattr("app.cli.main.build_parser", _parser_with_handler("doctor", broken))
    code = main(["--data-dir", str(tmp_path), "doctor"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("Error: RuntimeError: something inside broke\n"), err
    assert "Traceback" not in err
    log = (tmp_path / "logs" / "cocoon-provider.log").read_text()
    assert "Traceback" in log
    assert "something inside broke" in log


def _parser_with_handler(command: str, handler: object) -> Callable[[], argparse.ArgumentParser]:
    def build() -> argparse.ArgumentParser:
        parser = build_parser()
        for action in parser._actions:
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict) and command in choices:
                choices[command].set_defaults(handler=handler)
        return parser

    return build


#: Every sub-command, as a user would start it.
EVERY_COMMAND = [
    ["gui", "--smoke-test"],
    ["run", "--headless"],
    ["devnet"],
    ["bench", "--json"],
    ["doctor"],
    ["models", "list"],
    ["models", "download", "smollm2-135m"],
    ["wallet", "create", "--password-stdin"],
    ["wallet", "import", "--mnemonic-stdin", "--password-stdin"],
    ["wallet", "address"],
    ["wallet", "balance"],
    ["wallet", "history"],
    ["wallet", "send", "--to", "0QDLYGhRHNqXquKXJazsjMBUUhXtmZ_Nom43-_sztpg80Q6E", "--amount", "1"],
    ["wallet", "export", "history.csv"],
    ["wallet", "faucet"],
]


@pytest.mark.parametrize("argv", EVERY_COMMAND, ids=" ".join)
def test_an_unusable_data_dir_is_an_error_line(argv: list[str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = _python_m_app("--data-dir", str(blocker / "data"), *argv)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.startswith("Error: "), done.stderr


@pytest.mark.slow
@pytest.mark.allow_log_warnings  # the custom network's wallet is offline here (no liteservers)
async def test_run_without_headless_and_no_display_keeps_the_worker_flags(tmp_path: Path) -> None:
    # Before: `run` without --headless went to `gui`, which dropped --proxy, --owner-address, …
    # and, with no display, ran headless on the saved settings: "No proxy to connect to".
    network = LocalNetwork(demand_per_minute=0)
    backend = MockBackend(MockBackendConfig(mode="json"))
    await network.start()
    await backend.start()
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    env.pop("QT_QPA_PLATFORM", None)
    env["COCOON_PROVIDER_QUIET_LOGS"] = "1"
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "run",
            "--network",
            "custom",
            "--proxy",
            network.proxy_address,
            "--plain-tcp",
            "--backend-url",
            backend.url,
            "--model",
            "Qwen/Qwen3-8B",
            "--owner-address",
            "0QDLYGhRHNqXquKXJazsjMBUUhXtmZ_Nom43-_sztpg80Q6E",
            "--data-dir",
            str(tmp_path),
            env=env,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        lines: list[str] = []

        async def read() -> None:
            assert process.stdout is not None
            while line := (await process.stdout.readline()).decode():
                lines.append(line)

        reader = asyncio.create_task(read())
        try:
            # The worker reached the proxy named on the command line and offers the flagged model.
            await eventually(lambda: network.proxy.models() == ["Qwen/Qwen3-8B"], limit_s=60)
            process.send_signal(signal.SIGINT)
            async with asyncio.timeout(30):
                code = await process.wait()
                await reader
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    finally:
        await backend.aclose()
        await network.aclose()
    output = "".join(lines)
    assert code == 0, output
    assert "No display found: running headless" in output
    assert "earning" in output


@pytest.mark.parametrize("argv", EVERY_COMMAND, ids=" ".join)
def test_a_bad_argument_is_one_error_line_with_a_hint(argv: list[str], tmp_path: Path) -> None:
    done = _python_m_app("--data-dir", str(tmp_path), *argv, "--no-such-option")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    first, hint = done.stderr.splitlines()[-2:]
    assert first == "Error: Unrecognized arguments: --no-such-option.", done.stderr
    assert "--help" in hint


@pytest.mark.parametrize(
    "argv", [a for a in EVERY_COMMAND if a[0] == "wallet" and a[1] != "faucet"], ids=" ".join
)
def test_missing_stdin_is_an_error_line(argv: list[str], tmp_path: Path) -> None:
    done = _python_m_app("--data-dir", str(tmp_path), *argv, stdin="")
    assert done.returncode in (1, 2), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "Error: " in done.stderr, done.stderr
