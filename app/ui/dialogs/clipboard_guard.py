"""``ClipboardGuard``: warns inline when the withdraw destination may have been swapped in the
clipboard.

Clipboard-hijacking malware watches for a copied crypto address and replaces it with the
attacker's at once, so the user pastes a different address than the one they copied. The app
cannot see the copy's source, but it can see the clipboard: the guard records its text when the
dialog opens and on every ``dataChanged``, and warns (a label, never a modal that trains people
to click through) when

- the clipboard goes from one address to a *different* address while the dialog is open — the
  swap's signature (copying the destination from elsewhere usually replaces non-address text);
- an address is pasted into the field that is not the last text the guard saw in the clipboard
  (it changed unnoticed), or after a different address had been in the clipboard during this
  dialog.
"""

from __future__ import annotations

import re
from typing import Final

from PySide6.QtCore import QObject
from PySide6.QtGui import QClipboard, QGuiApplication
from PySide6.QtWidgets import QLabel, QLineEdit

# A user-friendly (48 base64 characters) or raw (workchain:64 hex) TON address. Only a shape
# test: the dialog's real check is the view-model's, this just says "an address was copied".
_ADDRESS: Final = re.compile(r"[A-Za-z0-9_\-+/]{48}|-?\d{1,3}:[0-9a-fA-F]{64}")
# Typing adds a character or two per edit; an insertion this long came from a paste (or a drop).
PASTE_MIN_CHARS: Final = 20
CHANGED_WARNING: Final = (
    "The clipboard changed while this dialog was open — check the address carefully."
)
PASTED_WARNING: Final = (
    "The pasted address is not the one the clipboard held earlier ({earlier}). Malware can "
    "swap copied addresses: compare every character with the address you meant to copy."
)


def looks_like_address(text: str) -> bool:
    return _ADDRESS.fullmatch(text.strip()) is not None


def _short(address: str) -> str:
    return f"{address[:6]}…{address[-6:]}"


def _inserted(before: str, after: str) -> str:
    """The text an edit inserted: ``after`` less the prefix and suffix it shares with ``before``."""
    start = 0
    limit = min(len(before), len(after))
    while start < limit and before[start] == after[start]:
        start += 1
    end = 0
    while end < limit - start and before[-1 - end] == after[-1 - end]:
        end += 1
    return after[start : len(after) - end]


class ClipboardGuard(QObject):
    """Watches the clipboard for ``field`` and writes its warnings into ``label`` (hidden while
    empty). ``stop`` ends the watch; the guard also ends with its parent ``field``."""

    def __init__(self, field: QLineEdit, label: QLabel) -> None:
        super().__init__(field)
        self._field = field
        self._label = label
        self._clipboard: QClipboard = QGuiApplication.clipboard()
        self._seen = ""
        self._addresses: list[str] = []  # distinct address-like texts seen, in order
        self.warnings: list[str] = []
        self._last_text = field.text()
        self._watching = False
        field.textEdited.connect(self._edited)
        field.textChanged.connect(self._remember_text)
        self.start()

    def start(self) -> None:
        """Record the clipboard as it is now and watch it (the dialog has opened)."""
        self.warnings = []
        self._addresses = []
        self._seen = ""
        self._record(self._clipboard.text())
        self._show()
        if not self._watching:
            self._clipboard.dataChanged.connect(self._clipboard_changed)
            self._watching = True

    def stop(self) -> None:
        if self._watching:
            self._clipboard.dataChanged.disconnect(self._clipboard_changed)
            self._watching = False

    def _record(self, text: str) -> None:
        self._seen = text.strip()
        if looks_like_address(self._seen) and self._seen not in self._addresses:
            self._addresses.append(self._seen)

    def _clipboard_changed(self) -> None:
        previous = self._seen
        self._record(self._clipboard.text())
        if (
            self._seen != previous
            and looks_like_address(previous)
            and looks_like_address(self._seen)
        ):
            self._warn(CHANGED_WARNING)

    def _remember_text(self, text: str) -> None:
        self._last_text = text

    def _edited(self, text: str) -> None:
        pasted = _inserted(self._last_text, text).strip()
        self._last_text = text
        if len(pasted) < PASTE_MIN_CHARS or not looks_like_address(pasted):
            return
        if pasted != self._clipboard.text().strip():
            return  # not from the clipboard (a drop, an input method): nothing to compare
        earlier = [address for address in self._addresses if address != pasted]
        if pasted != self._seen:
            # The clipboard changed without a dataChanged the guard saw: compare with the last.
            earlier.append(self._seen)
        if earlier:
            self._warn(PASTED_WARNING.format(earlier=_short(earlier[-1])))

    def _warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)
        self._show()

    def _show(self) -> None:
        self._label.setText("\n".join(self.warnings))
        self._label.setVisible(bool(self.warnings))
