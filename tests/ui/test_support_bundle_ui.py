"""The Settings page's "Create support bundle…" button: file dialog (monkeypatched or driven),
the bundle written off the GUI thread, and the path and redaction count or the error inline."""

from __future__ import annotations

import asyncio
import os
import threading
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QDialog, QFileDialog
from pytestqt.qtbot import QtBot

from app.core import support_bundle
from app.core.paths import AppPaths
from app.core.settings_store import SettingsStore
from app.ui.pages import settings as settings_page
from app.ui.pages.settings import SettingsPage
from app.ui.viewmodels.support import SupportViewModel, doctor_from_cli
from tests.ui.conftest import until

OWNER = "0QDLYGhRHNqXquKXJazsjMBUUhXtmZ_Nom43-_sztpg80Q6E"


async def fake_doctor() -> Mapping[str, Any]:
    return {"wallets": [{"address": OWNER}]}


def make_page(qtbot: QtBot, tmp_path: Path) -> SettingsPage:
    paths = AppPaths(tmp_path / "data").ensure()
    (paths.log_dir / "cocoon-provider.log").write_text(f"proxy 203.0.113.7 pays {OWNER}\n")
    store = SettingsStore.load(paths.settings_file)
    page = SettingsPage(store, SupportViewModel(paths, fake_doctor))
    qtbot.addWidget(page)
    return page


def choose(monkeypatch: pytest.MonkeyPatch, target: Path | None) -> list[QFileDialog]:
    """Replace the modal run: the "user" picks ``target`` (or cancels when ``None``)."""
    seen: list[QFileDialog] = []

    async def run_modal(dialog: QDialog) -> int:
        assert isinstance(dialog, QFileDialog)
        seen.append(dialog)
        if target is None:
            return QDialog.DialogCode.Rejected
        dialog.selectFile(str(target))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(settings_page, "run_modal", run_modal)
    return seen


async def test_the_button_writes_the_bundle_off_the_gui_thread_and_says_where(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = make_page(qtbot, tmp_path)
    target = tmp_path / "bundle.zip"
    dialogs = choose(monkeypatch, target)
    threads: list[threading.Thread] = []
    write = support_bundle.write_support_bundle

    def spy(*args: Any, **kwargs: Any) -> support_bundle.BundleResult:
        threads.append(threading.current_thread())
        return write(*args, **kwargs)

    monkeypatch.setattr("app.ui.viewmodels.support.write_support_bundle", spy)
    page.support_button.click()
    await until(lambda: "Saved" in page.support_message.text())
    assert page.support_message.text() == f"Saved {target} · 3 items redacted."
    assert page.support_message.objectName() == "Muted"
    assert page.support_button.isEnabled()
    assert dialogs[0].acceptMode() == QFileDialog.AcceptMode.AcceptSave
    assert threads
    assert threads[0] is not threading.main_thread()
    with zipfile.ZipFile(target) as archive:
        assert archive.read("cocoon-provider-support/doctor.json").count(b"<address #1>") == 1


async def test_cancelling_the_dialog_writes_nothing(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = make_page(qtbot, tmp_path)
    choose(monkeypatch, None)
    await page.create_support_bundle()
    assert page.support_message.text() == ""
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".zip")]


async def test_a_failure_is_shown_inline_as_an_error(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = make_page(qtbot, tmp_path)
    (tmp_path / "file").write_text("")
    choose(monkeypatch, tmp_path / "file" / "bundle.zip")
    await page.create_support_bundle()
    assert "is a file, not a folder" in page.support_message.text()
    assert page.support_message.objectName() == "Error"
    assert page.support_button.isEnabled()


async def test_the_real_file_dialog_path(qtbot: QtBot, tmp_path: Path) -> None:
    page = make_page(qtbot, tmp_path)
    task = asyncio.create_task(page.create_support_bundle())
    dialog = await until(lambda: page.dialog)
    assert isinstance(dialog, QFileDialog)
    dialog.selectFile(str(tmp_path / "picked.zip"))
    dialog.accept()
    await task
    assert zipfile.is_zipfile(tmp_path / "picked.zip")
    assert "3 items redacted" in page.support_message.text()


async def test_the_default_doctor_report_is_the_clis(tmp_path: Path) -> None:
    report = await doctor_from_cli(AppPaths(tmp_path / "data"), "devnet")
    assert {"app", "gpus", "wallets"} <= set(report)
    assert report["app"]["network"] == "devnet"
