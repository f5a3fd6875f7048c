"""The engine child's command line: the contract with the supervisor and its validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine.server.options import OptionsError, parse_options, read_api_key


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF")
    return path


def test_unix_socket_options(model: Path, tmp_path: Path) -> None:
    options = parse_options(
        [
            "--model",
            str(model),
            "--ctx",
            "2048",
            "--parallel",
            "8",
            "--threads",
            "2",
            "--gpu-layers",
            "-1",
            "--uds",
            str(tmp_path / "e.sock"),
        ]
    )
    assert (options.ctx, options.parallel, options.threads, options.gpu_layers) == (2048, 8, 2, -1)
    assert options.uds == tmp_path / "e.sock"
    assert options.model_alias == "m"
    assert options.max_queue == 32


def test_tcp_options(model: Path, tmp_path: Path) -> None:
    key = tmp_path / "key"
    options = parse_options(
        [
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--api-key-file",
            str(key),
            "--alias",
            "served-name",
        ]
    )
    assert (options.host, options.port, options.api_key_file) == ("127.0.0.1", 0, key)
    assert options.model_alias == "served-name"


@pytest.mark.parametrize(
    "extra",
    [
        [],  # no listening address
        ["--uds", "s", "--port", "1"],
        ["--host", "127.0.0.1", "--port", "1"],  # TCP without an API key
        ["--host", "0.0.0.0", "--port", "1", "--api-key-file", "k"],  # noqa: S104 - refused
        ["--uds", "s", "--ctx", "8"],
        ["--uds", "s", "--parallel", "0"],
        ["--uds", "s", "--parallel", "65"],
        ["--uds", "s", "--threads", "0"],
        ["--uds", "s", "--host", "127.0.0.1", "--port", "70000", "--api-key-file", "k"],
        ["--uds", "s", "--shutdown-grace", "-1"],
    ],
)
def test_bad_options_are_refused(model: Path, extra: list[str]) -> None:
    with pytest.raises(OptionsError):
        parse_options(["--model", str(model), *extra])


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="not a file"):
        parse_options(["--model", str(tmp_path / "absent.gguf"), "--uds", "s"])


def test_api_key_file(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("  0123456789abcdef-secret \n")
    assert read_api_key(key) == "0123456789abcdef-secret"
    key.write_text("short")
    with pytest.raises(OptionsError) as caught:
        read_api_key(key)
    assert "short" not in str(caught.value)
    with pytest.raises(OptionsError):
        read_api_key(tmp_path / "absent")
