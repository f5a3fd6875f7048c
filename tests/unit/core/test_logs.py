"""Logging: secrets are redacted before any handler writes them; files rotate in the data dir."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytoniq_core.crypto.keys import mnemonic_new

from app.core.logs import REDACTED, RedactionFilter, configure_logging, redact


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "logs" / "app.log"
    configure_logging(path, "DEBUG", stream=None)
    yield path
    configure_logging(None, "WARNING", stream=None)


def _flush() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


@pytest.mark.allow_log_warnings
def test_24_word_phrase_never_reaches_the_file(log_file: Path) -> None:
    words = mnemonic_new()
    phrase = " ".join(words)
    logger = logging.getLogger("test.wallet")
    logger.info("imported %s", phrase)
    logger.info("words: %s", ", ".join(words))
    logger.debug("as list %r", words)
    try:
        raise ValueError(f"bad phrase {phrase}")
    except ValueError:
        logger.exception("import failed")  # the traceback carries the phrase too
    _flush()
    text = log_file.read_text()
    assert text.count(REDACTED) >= 4
    for index in range(0, 24, 4):
        assert " ".join(words[index : index + 4]) not in text
    assert sum(word in text.split() for word in words) < 12


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("Authorization: Bearer sk-abcdef123456", "sk-abcdef123456"),
        ("password=hunter2hunter2", "hunter2hunter2"),
        ('{"api_key": "k-9876543210"}', "k-9876543210"),
        ("node_wallet_key: deadbeefcafe", "deadbeefcafe"),
        ("private key " + "ab" * 64, "ab" * 64),
    ],
)
def test_redacts_common_secret_shapes(message: str, secret: str) -> None:
    assert secret not in redact(message)


def test_keeps_ordinary_text() -> None:
    text = "could not read the model file from disk when the user asked; tx " + "ab" * 32
    assert redact(text) == text


def test_filter_rewrites_args() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "pw %s", ("password=abc12345",), None
    )
    assert RedactionFilter().filter(record)
    assert record.getMessage() == f"pw password={REDACTED}"
