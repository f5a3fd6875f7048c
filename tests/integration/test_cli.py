"""The CLI as a user runs it: --version, --help, headless run/stop, GUI smoke test, bad settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app import __version__
from app.cli.main import main
from app.cli.run_cmd import parse_coefficient
from app.core.errors import UserFacingError

ROOT = Path(__file__).parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    env.pop("QT_QPA_PLATFORM", None)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


TEST_OWNER = "0QDLYGhRHNqXquKXJazsjMBUUhXtmZ_Nom43-_sztpg80Q6E"


def _spawn(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    """``python -m app --data-dir DATA_DIR ARGS…`` with pipes, as a user's terminal would run it."""
    return subprocess.Popen(
        [sys.executable, "-m", "app", "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"cocoon-provider {__version__}"


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("gui", "run", "devnet", "bench", "doctor", "wallet", "--data-dir", "--network"):
        assert command in out


def test_unknown_network_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--network", "moon", "run", "--headless"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_headless_run_stops_cleanly_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    proc = _spawn(
        tmp_path, "run", "--headless", "--status-interval", "0.2", "--owner-address", TEST_OWNER
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(3)]
    assert "headless" in lines[0]
    assert any("[devnet]" in line for line in lines[1:])
    proc.send_signal(sig)
    sent = time.monotonic()
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert time.monotonic() - sent < 5
    assert out.rstrip().endswith("stopped")
    assert (tmp_path / "logs" / "cocoon-provider.log").exists()


@pytest.mark.slow
def test_gui_smoke_test(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "--data-dir", str(tmp_path), "gui", "--smoke-test"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "smoke test passed" in (tmp_path / "logs" / "cocoon-provider.log").read_text()


@pytest.mark.slow
def test_gui_without_display_runs_headless(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text(
        f'schema_version = 2\n[worker]\nowner_address = "{TEST_OWNER}"\n'
    )
    proc = _spawn(tmp_path, "gui")
    assert proc.stdout is not None
    assert "headless" in proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "No display found" in err


def test_invalid_settings_file_is_reported_not_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text("schema_version = 2\n[engine]\ntemperature_cap_c = 'hot'\n")
    assert main(["--data-dir", str(tmp_path), "run", "--headless"]) == 1
    assert "engine.temperature_cap_c" in capsys.readouterr().err
    assert "hot" in settings.read_text()


@pytest.mark.allow_log_warnings
def test_corrupt_settings_file_is_moved_aside_and_user_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "settings.toml").write_text("this is [ not toml")
    main(["--data-dir", str(tmp_path), "doctor"])  # every command loads the settings first
    assert "could not be read and was moved" in capsys.readouterr().err
    assert list(tmp_path.glob("settings.toml.corrupt-*"))


def test_data_dir_that_cannot_be_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["--data-dir", str(blocker / "sub"), "run", "--headless"]) == 1
    assert "Error:" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "value"), [("1", 1000), ("1.5", 1500), ("0.001", 1), ("0", 0)])
def test_coefficient_is_parsed_exactly(text: str, value: int) -> None:
    assert parse_coefficient(text) == value


@pytest.mark.parametrize("text", ["abc", "1.0001", "-1", "1000000", "nan", "inf"])
def test_bad_coefficient_is_rejected(text: str) -> None:
    with pytest.raises(UserFacingError, match="coefficient"):
        parse_coefficient(text)


def test_bad_coefficient_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(tmp_path), "run", "--headless", "--coefficient", "x"]) == 1
    assert "not a price coefficient" in capsys.readouterr().err


@pytest.mark.allow_log_warnings
def test_headless_exits_1_when_earning_cannot_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--data-dir",
            str(tmp_path),
            "run",
            "--headless",
            "--backend-url",
            "http://127.0.0.1:9",
            "--model",
            "Qwen/Qwen3-8B",
            "--owner-address",
            TEST_OWNER,
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "could not start earning" in out
    assert "not answering" in out
    assert out.rstrip().endswith("stopped")


def test_headless_devnet_without_a_wallet_or_password_says_how(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--data-dir", str(tmp_path), "run", "--headless"])
    assert code == 1
    out = capsys.readouterr().out
    assert "Error: could not start earning: The local network pays your earnings" in out
    assert "--password-stdin" in out
    assert not list((tmp_path / "wallets").glob("*.vault*"))


@pytest.mark.slow
def test_devnet_command_serves_until_stopped(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, "devnet", "--demand", "0", "--status-interval", "0.2")
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("workers connect to: 127.0.0.1:")
    assert "/v1/chat/completions" in proc.stdout.readline()
    assert proc.stdout.readline().startswith("workers 0")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_devnet_rejects_a_bad_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(tmp_path), "devnet", "--proxy-port", "70000"]) == 2
    assert "not a port number" in capsys.readouterr().err


def test_models_list_shows_the_bundled_model_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(tmp_path), "models", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    bundled = rows["HuggingFaceTB/SmolLM2-135M-Instruct"]
    assert bundled["installed"]
    assert bundled["bundled"]
    assert not rows["Qwen/Qwen3-8B"]["installed"]
    assert main(["--data-dir", str(tmp_path), "models", "list"]) == 0
    assert "installed" in capsys.readouterr().out


def test_models_download_of_an_unknown_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(tmp_path), "models", "download", "nope/nope"]) == 1
    assert "not a model this app can serve" in capsys.readouterr().err


def test_headless_first_start_at_a_terminal_asks_for_the_new_password_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["one password", "another one"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr("app.cli.secrets.has_terminal", lambda: True)
    code = main(["--data-dir", str(tmp_path), "run", "--headless"])
    assert code == 1
    out = capsys.readouterr().out
    assert "Error: could not start earning: The two passwords differ." in out
    assert not list((tmp_path / "wallets").glob("*.vault*"))  # nothing was created
