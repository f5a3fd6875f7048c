"""The support bundle: one zip of logs, settings, the doctor report and versions, redacted.

Owns what goes into the bundle (and what never does), its fixed layout under
``cocoon-provider-support/``, the ``redaction-report.txt`` (kinds and counts per file, never the
values) and the atomic 0600 write. Only named files are read: the log folder's ``*.log`` files
(rotated ones too), ``settings.toml`` and the crash logs. Wallet vaults, the jobs and payments
databases and models are never opened. Every text passes through :class:`BundleRedactor`.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import platform
import re
import sys
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import __version__
from app.core.atomic import write_private_atomic
from app.core.errors import UserFacingError
from app.core.paths import AppPaths
from app.core.redaction import KINDS, BundleRedactor

ROOT = "cocoon-provider-support"
REPORT_NAME = f"{ROOT}/redaction-report.txt"
PACKAGES = ("PySide6", "pytoniq", "pytoniq-core", "llama-cpp-python", "nvidia-ml-py")
# A log larger than this contributes its newest part only (rotation keeps ours at 2 MiB).
MAX_FILE_BYTES = 8 * 1024 * 1024
# Log file names only: a stray database or wallet file in the log folder is never picked up.
_LOG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.log(\.\d+)?$")
# Fixed entry times and modes make two bundles of the same files identical byte for byte.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_ZIP_MODE = 0o100600 << 16

NEVER_INCLUDED = (
    "wallet files (wallets/)",
    "the jobs and payments databases",
    "models",
    "the text of requests and answers (the app never stores them)",
)


class SupportBundleError(UserFacingError):
    """The bundle could not be written where it was asked for."""


@dataclass(frozen=True, slots=True)
class BundleEntry:
    """One text file of the bundle before redaction; ``note`` says if it was shortened."""

    name: str
    text: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class BundleResult:
    """A written bundle: where, the entry names in order and how many items were removed."""

    path: Path
    entries: tuple[str, ...]
    redacted: int


def versions() -> dict[str, Any]:
    """The app's, Python's, the platform's and key packages' versions."""
    packages: dict[str, str] = {}
    for name in PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = "not installed"
    return {
        "app": __version__,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": packages,
    }


def collect(paths: AppPaths, doctor: Mapping[str, Any]) -> list[BundleEntry]:
    """The bundle's texts, unredacted, in their fixed order (the report comes last, later)."""
    entries = [
        BundleEntry(f"{ROOT}/versions.json", _json(versions())),
        BundleEntry(f"{ROOT}/doctor.json", _json(doctor)),
    ]
    for name, source in (
        ("settings.toml", paths.settings_file),
        ("crash.log", paths.crash_log),
        ("crash.previous.log", paths.crash_log.with_suffix(".previous.log")),
    ):
        entry = _read(f"{ROOT}/{name}", source)
        if entry is not None:
            entries.append(entry)
    for source in _log_files(paths.log_dir):
        entry = _read(f"{ROOT}/logs/{source.name}", source)
        if entry is not None:
            entries.append(entry)
    return entries


def build_bundle(entries: list[BundleEntry]) -> tuple[bytes, int]:
    """The zip (every entry redacted, then the report) and the number of items removed."""
    redactor = BundleRedactor()
    buffer = io.BytesIO()
    counts: list[tuple[BundleEntry, Counter[str]]] = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            text, found = redactor.redact(entry.text)
            counts.append((entry, found))
            _add(archive, entry.name, text)
        _add(archive, REPORT_NAME, _report(counts, redactor))
    return buffer.getvalue(), sum(sum(found.values()) for _, found in counts)


def check_target(target: Path, *, overwrite: bool) -> None:
    """Refuse a folder, or an existing file unless ``overwrite``; before any slow work."""
    if target.is_dir():
        raise SupportBundleError(
            f"{target} is a folder.", hint="Give a file name, e.g. cocoon-support.zip."
        )
    existing = next((p for p in target.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise SupportBundleError(
            f"{existing} is a file, not a folder: {target} cannot be written.",
            hint="Choose a file name in a folder.",
        )
    if target.exists() and not overwrite:
        raise SupportBundleError(
            f"{target} already exists.",
            hint="Pass --force to replace it, or choose another file name.",
        )


def write_support_bundle(
    target: Path, paths: AppPaths, doctor: Mapping[str, Any], *, overwrite: bool = False
) -> BundleResult:
    """Collect, redact and write the bundle to ``target`` atomically, readable by the user only.

    ``doctor`` is the ``doctor --json`` report (or ``{"error": …}`` when it could not be made).
    Blocking file I/O: the app runs it in a worker thread.
    """
    check_target(target, overwrite=overwrite)
    entries = collect(paths, doctor)
    data, redacted = build_bundle(entries)
    try:
        write_private_atomic(target, data)
    except OSError as exc:
        raise SupportBundleError(
            f"Could not write the support bundle to {target}: {exc.strerror or exc}.",
            hint="Choose a folder you can write to (your home folder works).",
        ) from None
    names = (*(entry.name for entry in entries), REPORT_NAME)
    return BundleResult(path=target, entries=names, redacted=redacted)


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"


def _log_files(log_dir: Path) -> list[Path]:
    if not log_dir.is_dir():
        return []
    return sorted(
        path
        for path in log_dir.iterdir()
        if _LOG_NAME.match(path.name) and path.is_file() and not path.is_symlink()
    )


def _read(name: str, source: Path) -> BundleEntry | None:
    """The text of ``source`` (its newest part when huge); ``None`` when it does not exist."""
    if source.is_symlink() or not source.is_file():
        return None
    try:
        with source.open("rb") as handle:
            size = handle.seek(0, io.SEEK_END)
            handle.seek(max(0, size - MAX_FILE_BYTES))
            data = handle.read(MAX_FILE_BYTES)
    except OSError as exc:
        return BundleEntry(name, "", note=f"could not be read ({exc.strerror or exc})")
    if size <= MAX_FILE_BYTES:
        return BundleEntry(name, data.decode("utf-8", errors="replace"))
    # Start at a line boundary: half a line could hold part of a secret the patterns miss.
    data = data[data.find(b"\n") + 1 :]
    note = f"only the newest {MAX_FILE_BYTES // (1024 * 1024)} MiB of {size} bytes"
    return BundleEntry(name, data.decode("utf-8", errors="replace"), note=note)


def _add(archive: zipfile.ZipFile, name: str, text: str) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = _ZIP_MODE
    archive.writestr(info, text.encode("utf-8"))


def _report(counts: list[tuple[BundleEntry, Counter[str]]], redactor: BundleRedactor) -> str:
    lines = [
        "What was removed from this support bundle before it was written.",
        "Only kinds and counts are listed here; the removed values are not kept anywhere.",
        "Addresses and IPs became numbered placeholders (<address #1>, <ip #1>): one number is",
        "one value across all files of this bundle.",
        "",
    ]
    total: Counter[str] = Counter()
    for entry, found in counts:
        total.update(found)
        removed = ", ".join(f"{kind}: {found[kind]}" for kind in KINDS if found[kind])
        lines.append(f"{entry.name}: {removed or 'nothing removed'}")
        if entry.note:
            lines.append(f"  note: {entry.note}")
    lines += [
        "",
        f"Total: {sum(total.values())} items removed"
        + "".join(f"; {kind}: {total[kind]}" for kind in KINDS if total[kind]),
        f"Distinct TON addresses: {redactor.distinct_addresses}; "
        f"distinct IP addresses: {redactor.distinct_ips}",
        "",
        "Never included:",
        *(f"  - {item}" for item in NEVER_INCLUDED),
    ]
    return "\n".join(lines) + "\n"
