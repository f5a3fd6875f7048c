"""The Settings page's message line takes the style of what it says (an error reads as one)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from app.core.settings_store import SettingsStore
from app.ui.pages.settings import SettingsPage
from app.ui.theme import style_sheet
from tests.ui.test_theme import ERROR, MUTED, text_colour


def test_the_message_is_red_for_a_refused_save_and_muted_once_saved(
    qtbot: QtBot, tmp_path: Path
) -> None:
    page = SettingsPage(SettingsStore.load(tmp_path / "settings.toml"))
    qtbot.addWidget(page)
    page.setStyleSheet(style_sheet())
    amount = next(w for w in page.findChildren(QLineEdit) if "first send" in w.toolTip())
    before = amount.text()
    amount.setText("lots")
    assert not page.save()
    assert page.message.objectName() == "Error"
    assert text_colour(page.message) == ERROR
    amount.setText(before)
    assert page.save()
    assert text_colour(page.message) == MUTED
