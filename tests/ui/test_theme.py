"""The style sheet loads, and ``restyle`` re-applies it after an object name changes."""

from __future__ import annotations

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from app.ui.theme import restyle, style_sheet

MUTED, ERROR = "#6b7280", "#b91c1c"  # QLabel#Muted and QLabel#Error in app.qss


def text_colour(label: QLabel) -> str:
    return label.palette().color(QPalette.ColorRole.WindowText).name()


def test_restyle_applies_the_new_names_rule(qtbot: QtBot) -> None:
    label = QLabel("Saved.")
    qtbot.addWidget(label)
    label.setStyleSheet(style_sheet())
    restyle(label, "Muted")
    assert label.objectName() == "Muted"
    assert text_colour(label) == MUTED
    label.setObjectName("Error")
    assert text_colour(label) == MUTED  # a new name alone changes nothing on screen
    restyle(label, "Error")
    assert text_colour(label) == ERROR
