"""Crash handling: native faults land in crash.log (0600), are shown redacted at the next start, and
unexpected errors are logged and shown in a dialog instead of killing the app."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot
from pytoniq_core.crypto.keys import mnemonic_new

from app.core.logs import REDACTED
from app.ui.crash import install_crash_handlers, uninstall_crash_handlers

ROOT = Path(__file__).parents[2]


def test_a_native_crash_is_written_to_crash_log(tmp_path: Path) -> None:
    crash_log = tmp_path / "crash.log"
    code = (
        "import faulthandler, sys; from pathlib import Path; "
        "from app.ui.crash import install_crash_handlers; "
        f"install_crash_handlers(Path({str(crash_log)!r})); faulthandler._sigsegv()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "Fatal Python error" in crash_log.read_text()
    assert stat.S_IMODE(crash_log.stat().st_mode) == 0o600


def test_previous_crash_is_returned_redacted_and_kept_aside(tmp_path: Path) -> None:
    crash_log = tmp_path / "crash.log"
    phrase = " ".join(mnemonic_new())
    crash_log.write_text(f"Fatal Python error\nlocals: {phrase}\n")
    try:
        previous = install_crash_handlers(crash_log)
    finally:
        uninstall_crash_handlers()
    assert previous is not None
    assert "Fatal Python error" in previous
    assert REDACTED in previous
    assert phrase not in previous
    assert (tmp_path / "crash.previous.log").exists()
    assert crash_log.read_text() == ""


def test_no_previous_crash(tmp_path: Path) -> None:
    try:
        assert install_crash_handlers(tmp_path / "crash.log") is None
    finally:
        uninstall_crash_handlers()


@pytest.mark.allow_log_warnings
def test_unexpected_error_is_logged_and_shown(
    qtbot: QtBot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    install_crash_handlers(tmp_path / "crash.log")
    try:
        try:
            raise RuntimeError("boom password=hunter2hunter2")
        except RuntimeError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
        boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox)]
        assert boxes
        box = boxes[-1]
        qtbot.addWidget(box)
        assert "hunter2hunter2" not in box.detailedText()
        assert "RuntimeError" in box.detailedText()
        assert "unexpected error" in caplog.text
    finally:
        uninstall_crash_handlers()
