"""Logging set-up: a rotating file in the data dir, stderr, and a filter that redacts secrets."""

from __future__ import annotations

import functools
import logging
import logging.handlers
import re
import sys
from pathlib import Path
from typing import TextIO

REDACTED = "[REDACTED]"
_MIN_MNEMONIC_WORDS = 12

_PATTERNS: tuple[re.Pattern[str], ...] = (
    # "Authorization: Bearer abc", "bearer=abc"
    re.compile(r"(?i)\b(bearer)(\s+|=)[A-Za-z0-9._~+/=-]{8,}"),
    # key=value / key: value pairs whose key names a secret
    re.compile(
        r"(?i)\b(password|passphrase|passwd|secret|api[_-]?key|token|private[_-]?key|seed|"
        r"mnemonic|node_wallet_key|data[_-]?key)(\"?\s*[:=]\s*\"?)[^\s\"',;}]+"
    ),
    # 64-byte Ed25519 private keys (seed + public key) in hex
    re.compile(r"\b[0-9a-fA-F]{128}\b"),
)
_WORD_RE = re.compile(r"[a-z]+")


@functools.cache
def _mnemonic_words() -> frozenset[str]:
    # TON mnemonics use the BIP-39 English list; pytoniq-core ships it.
    from pytoniq_core.crypto import keys

    return frozenset(keys.words)


def redact(text: str) -> str:
    """Remove anything that looks like a secret from ``text``."""
    for pattern in _PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        else:
            text = pattern.sub(REDACTED, text)
    return _redact_mnemonics(text)


def _redact_mnemonics(text: str) -> str:
    """Replace every run of 12+ consecutive wordlist words (any separators) with a marker."""
    words = _mnemonic_words()
    matches = list(_WORD_RE.finditer(text.lower()))
    spans: list[tuple[int, int]] = []
    run: list[re.Match[str]] = []
    for match in [*matches, None]:
        if (
            match is not None
            and match.group() in words
            and (not run or _only_separators(text[run[-1].end() : match.start()]))
        ):
            run.append(match)
            continue
        if len(run) >= _MIN_MNEMONIC_WORDS:
            spans.append((run[0].start(), run[-1].end()))
        run = [match] if match is not None and match.group() in words else []
    for start, end in reversed(spans):
        text = f"{text[:start]}{REDACTED}{text[end:]}"
    return text


def _only_separators(gap: str) -> bool:
    return len(gap) <= 6 and all(ch in " \t\n\r,;:'\"[]()0123456789.-" for ch in gap)


class RedactionFilter(logging.Filter):
    """Rewrites each record's final message with :func:`redact` (arguments are merged first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and record.exc_text is None:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


#: ``extra=`` for records meant for the log file only (a traceback the terminal shows as one line).
FILE_ONLY: dict[str, object] = {"file_only": True}


def _not_file_only(record: logging.LogRecord) -> bool:
    return not getattr(record, "file_only", False)


def configure_logging(
    log_file: Path | None, level: str = "INFO", *, stream: TextIO | None = sys.stderr
) -> None:
    """Route the root logger to a rotating ``log_file`` (5 × 2 MiB) and ``stream``, redacted."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_cocoon", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level.upper())
    handlers: list[logging.Handler] = []
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_file, maxBytes=2 * 1024 * 1024, backupCount=5, encoding="utf-8"
            )
        )
    if stream is not None:
        terminal = logging.StreamHandler(stream)
        terminal.addFilter(_not_file_only)
        handlers.append(terminal)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.addFilter(RedactionFilter())
        handler._cocoon = True  # type: ignore[attr-defined]
        root.addHandler(handler)
