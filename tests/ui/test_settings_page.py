"""The Settings page's message line takes the style of what it says (an error reads as one)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtWidgets import QLabel, QLineEdit
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


def test_fields_show_their_labels_and_hidden_ones_are_kept_not_shown(
    qtbot: QtBot, tmp_path: Path
) -> None:
    store = SettingsStore.load(tmp_path / "settings.toml")
    store.update(
        lambda s: dataclasses.replace(s, wallet=dataclasses.replace(s.wallet, active_wallet="w1"))
    )
    page = SettingsPage(store)
    qtbot.addWidget(page)
    labels = {label.text() for label in page.findChildren(QLabel)}
    assert "Temperature cap (°C)" in labels
    assert "Cash out from (nanotons)" in labels
    assert not any(t.lower().startswith("active wallet") for t in labels)
    assert not any("_" in t and t.islower() for t in labels)  # no raw field names
    assert page.save()
    assert store.current.value.wallet.active_wallet == "w1"  # the hidden value survived Save
