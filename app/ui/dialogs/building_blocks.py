"""Small widgets every dialog uses: the error/notice label and the right-aligned button row."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton


def message_label(kind: str = "Error") -> QLabel:
    """A word-wrapped label styled by the app's style sheet (``Error``, ``Warning``, ``Muted``)."""
    label = QLabel("")
    label.setObjectName(kind)
    label.setWordWrap(True)
    return label


def button_row(*buttons: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addStretch(1)
    for button in buttons:
        row.addWidget(button)
    return row
