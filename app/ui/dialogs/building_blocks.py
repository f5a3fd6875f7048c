"""Small widgets the dialogs and the Wallet page share: message labels, buttons, layouts, and
``GuardedDialog`` (no closing while its command runs)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Iterator

from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.ui.viewmodels.wallet import Failure


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


class GuardedDialog(QDialog):
    """A dialog that ignores Esc/close while its command runs: closing then would hide whether
    the wallet was stored, and the command goes on anyway."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._working = False

    @property
    def is_working(self) -> bool:
        return self._working

    @contextlib.contextmanager
    def working(self, *widgets: QWidget) -> Iterator[None]:
        """Disable ``widgets`` and refuse to close until the block ends."""
        self._working = True
        for widget in widgets:
            widget.setEnabled(False)
        try:
            yield
        finally:
            self._working = False
            for widget in widgets:
                widget.setEnabled(True)

    async def finish_with(
        self, command: Awaitable[Failure | None], note: QLabel, busy: str, *widgets: QWidget
    ) -> bool:
        """Run ``command`` (``busy`` in ``note``, ``widgets`` disabled): accept the dialog when it
        succeeds, or show its failure in ``note``. True when the dialog was accepted."""
        note.setText(busy)
        with self.working(*widgets):
            result = await command
        if isinstance(result, Failure):
            note.setText(result.text)
            return False
        self.accept()
        return True

    def reject(self) -> None:
        if not self._working:
            super().reject()
