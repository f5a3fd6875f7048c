"""Small widgets the dialogs and the Wallet page share: message labels, buttons, layouts."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


def message_label(kind: str = "Error") -> QLabel:
    """A word-wrapped label styled by the app's style sheet (``Error``, ``Warning``, ``Muted``)."""
    label = QLabel("")
    label.setObjectName(kind)
    label.setWordWrap(True)
    return label


def push_button(text: str, *, primary: bool = False) -> QPushButton:
    button = QPushButton(text)
    if primary:
        button.setObjectName("Primary")
    return button


def button_row(*buttons: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addStretch(1)
    for button in buttons:
        row.addWidget(button)
    return row


def vbox_of(widget: QWidget) -> QVBoxLayout:
    """The vertical layout ``widget`` was built with (a ``Card``, say)."""
    layout = widget.layout()
    if not isinstance(layout, QVBoxLayout):
        raise TypeError(f"{type(widget).__name__} has no vertical layout")
    return layout


def top_aligned(owner: QWidget, content: QWidget) -> None:
    """Give ``owner`` a layout that keeps ``content`` at the top, free space below it."""
    layout = QVBoxLayout(owner)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(content)
    layout.addStretch(1)
