"""Crash reporting: native faults to ``crash.log`` (shown at next start) and a dialog for errors."""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import IO

from PySide6.QtWidgets import QApplication, QMessageBox

from app.core.logs import redact

_log = logging.getLogger(__name__)
_fault_file: IO[str] | None = None
_open_dialogs: list[QMessageBox] = []


def install_crash_handlers(crash_log: Path) -> str | None:
    """Enable faulthandler into ``crash_log`` and hook ``sys.excepthook``.

    Returns the previous run's crash report (redacted) if there was one, so the UI can show it.
    """
    global _fault_file
    previous: str | None = None
    if crash_log.exists() and crash_log.stat().st_size > 0:
        previous = redact(crash_log.read_text(encoding="utf-8", errors="replace"))
        crash_log.replace(crash_log.with_suffix(".previous.log"))
    fd = os.open(crash_log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    _fault_file = os.fdopen(fd, "w", encoding="utf-8")  # lives as long as the process
    faulthandler.enable(_fault_file)
    sys.excepthook = _excepthook
    return previous


def uninstall_crash_handlers() -> None:
    global _fault_file
    sys.excepthook = sys.__excepthook__
    if _fault_file is not None:
        faulthandler.disable()
        _fault_file.close()
        _fault_file = None


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    _log.error("unexpected error", exc_info=(exc_type, exc, tb))
    if QApplication.instance() is None:
        return
    text = redact("".join(traceback.format_exception_only(exc_type, exc)).strip())
    box = QMessageBox(
        QMessageBox.Icon.Critical,
        "cocoon-provider hit an error",
        "Something went wrong. Your wallet and earnings are safe; the details are in the log file.",
    )
    box.setDetailedText(text)
    # Without a parent nothing else holds the dialog: keep it alive until it is closed.
    _open_dialogs.append(box)
    box.finished.connect(lambda _result: _open_dialogs.remove(box))
    box.open()
