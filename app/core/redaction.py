"""Support-bundle redaction: secrets, TON addresses, IP addresses and prompt-like values.

Owns :class:`BundleRedactor`, which rewrites text for a support bundle and counts what it removed
per kind. Secrets go through :func:`app.core.logs.redact` (mnemonic runs, keys, ``password=…``)
plus whole quoted secret values; addresses and IPs become numbered placeholders that stay the
same across every file of one bundle, so "the same wallet" or "the same proxy" is still visible.
The removed values themselves are never kept: only their placeholders' numbering and the counts.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections import Counter

from app.core.logs import REDACTED, redact

KIND_PROMPT = "prompt-like text"
KIND_PRIVATE = "secret"
KIND_ADDRESS = "TON address"
KIND_IP = "IP address"
KINDS = (KIND_PROMPT, KIND_PRIVATE, KIND_ADDRESS, KIND_IP)

PROMPT_REMOVED = "<prompt-like text removed>"

# A secret-named key whose value is quoted: logs.redact stops at the first space of the value.
_QUOTED_SECRET = re.compile(
    r"(?i)\b(password|passphrase|passwd|secret|api[_-]?key|token|private[_-]?key|seed|"
    r"mnemonic|node_wallet_key|data[_-]?key)([\"']?\s*[:=]\s*)(\"(?:[^\"\\\n]|\\.)*\"|"
    r"'(?:[^'\\\n]|\\.)*')"
)
# The keys under which chat requests carry what people typed; they never belong in logs.
_PROMPT_KEY = re.compile(r"([\"'])(messages|prompt|content)\1\s*:\s*")
# Raw form ``wc:hex64``; the workchain is small (0 or -1 in practice).
_RAW_ADDRESS = re.compile(r"(?<![\w:-])(-?\d{1,3}):([0-9a-fA-F]{64})(?![\w])")
# User-friendly form: 36 bytes in base64 or base64url, 48 characters, no padding.
_FRIENDLY_ADDRESS = re.compile(r"(?<![A-Za-z0-9_+/-])[A-Za-z0-9_+/-]{48}(?![A-Za-z0-9_+/=-])")
_FRIENDLY_TAGS = frozenset({0x11, 0x51, 0x91, 0xD1})  # bounceable or not, test-only or not
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


class BundleRedactor:
    """Redacts one bundle's texts; placeholder numbers are shared by all texts it is given."""

    def __init__(self) -> None:
        self._addresses: dict[tuple[int, bytes], int] = {}
        self._ips: dict[str, int] = {}

    @property
    def distinct_addresses(self) -> int:
        return len(self._addresses)

    @property
    def distinct_ips(self) -> int:
        return len(self._ips)

    def redact(self, text: str) -> tuple[str, Counter[str]]:
        """``text`` without secrets, addresses, IPs and prompts, and how many of each went."""
        counts: Counter[str] = Counter()
        text, counts[KIND_PROMPT] = _redact_prompts(text)
        # Secrets before placeholders: "<address #1>" must not join a run of mnemonic words.
        text, counts[KIND_PRIVATE] = _redact_secrets(text)
        text, counts[KIND_ADDRESS] = self._redact_addresses(text)
        text, counts[KIND_IP] = self._redact_ips(text)
        return text, +counts  # unary plus drops the kinds that found nothing

    def _redact_addresses(self, text: str) -> tuple[str, int]:
        found = 0

        def raw(match: re.Match[str]) -> str:
            nonlocal found
            found += 1
            key = (int(match.group(1)), bytes.fromhex(match.group(2)))
            return self._address_placeholder(key)

        def friendly(match: re.Match[str]) -> str:
            nonlocal found
            key = _friendly_key(match.group())
            if key is None:
                return match.group()
            found += 1
            return self._address_placeholder(key)

        text = _RAW_ADDRESS.sub(raw, text)
        return _FRIENDLY_ADDRESS.sub(friendly, text), found

    def _address_placeholder(self, key: tuple[int, bytes]) -> str:
        # Keyed by (workchain, account id): every form of one account gets one number.
        number = self._addresses.setdefault(key, len(self._addresses) + 1)
        return f"<address #{number}>"

    def _redact_ips(self, text: str) -> tuple[str, int]:
        found = 0

        def replace(match: re.Match[str]) -> str:
            nonlocal found
            try:
                ip = ipaddress.ip_address(match.group())
            except ValueError:  # a time of day, a version number: not an address
                return match.group()
            # Loopback and "all interfaces" identify nobody and tell support how things listen.
            if ip.is_loopback or ip.is_unspecified:
                return match.group()
            found += 1
            number = self._ips.setdefault(ip.compressed, len(self._ips) + 1)
            return f"<ip #{number}>"

        text = _IPV4.sub(replace, text)
        return _IPV6.sub(replace, text), found


def _friendly_key(token: str) -> tuple[int, bytes] | None:
    """(workchain, account id) of a valid user-friendly address, else ``None``."""
    try:
        data = base64.urlsafe_b64decode(token.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):
        return None
    if len(data) != 36 or data[0] not in _FRIENDLY_TAGS:
        return None
    # The checksum keeps random 48-character tokens (hashes, ids) out.
    if binascii.crc_hqx(data[:34], 0) != int.from_bytes(data[34:], "big"):
        return None
    return int.from_bytes(data[1:2], "big", signed=True), data[2:34]


def _redact_secrets(text: str) -> tuple[str, int]:
    before = text.count(REDACTED)  # markers the log filter already wrote were not removed now
    text = _QUOTED_SECRET.sub(lambda m: f'{m.group(1)}{m.group(2)}"{REDACTED}"', text)
    text = redact(text)
    return text, text.count(REDACTED) - before


def _redact_prompts(text: str) -> tuple[str, int]:
    """Replace string, list or object values of ``messages``/``prompt``/``content`` keys."""
    parts: list[str] = []
    found = 0
    pos = 0
    for match in _PROMPT_KEY.finditer(text):
        if match.start() < pos:
            continue  # inside a value removed already
        start = match.end()
        end = _value_end(text, start)
        if end is None:
            continue
        parts.append(text[pos:start])
        parts.append(f'"{PROMPT_REMOVED}"')
        pos = end
        found += 1
    parts.append(text[pos:])
    return "".join(parts), found


def _value_end(text: str, start: int) -> int | None:
    """End of the non-empty string/list/object starting at ``start``; ``None`` if none does.

    A value cut short (a truncated log line) ends with its line, so the rest of the log stays.
    """
    if start >= len(text) or text[start] not in "\"'[{":
        return None
    line_end = text.find("\n", start)
    line_end = len(text) if line_end == -1 else line_end
    if text[start] in "\"'":
        end = _string_end(text, start)
        if end is None:
            return line_end
        return None if end == start + 2 else end
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch in "\"'":
            end = _string_end(text, i)
            if end is None:
                return line_end
            i = end
            continue
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return None if i == start + 1 else i + 1
        i += 1
    # An unclosed list or object: cut to the end of its first line, not the rest of the file.
    return line_end


def _string_end(text: str, start: int) -> int | None:
    """End of the quoted string at ``start``; ``None`` if it is cut short by a line's end."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == quote:
            return i + 1
        if ch == "\n":  # JSON and repr strings never hold a raw newline
            return None
        i += 1
    return None
