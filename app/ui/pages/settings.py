"""``SettingsPage``: every setting, generated from the typed settings sections, with help texts."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from app.core.errors import UserFacingError
from app.core.settings import SECTIONS, Settings
from app.core.settings_store import SettingsStore
from app.ui.pages.page import Page
from app.ui.theme import restyle

_TITLES = {
    "general": "General",
    "engine": "Engine and GPU",
    "worker": "Worker",
    "wallet": "Wallet",
    "devnet": "Local test network",
}

Getter = Callable[[], Any]
_SPIN_MAX = 2**31 - 1


class SettingsPage(Page):
    """Edits a copy of the settings; Save validates through the store, which names any bad key."""

    def __init__(self, store: SettingsStore) -> None:
        super().__init__("Settings", "Changes apply after Save. Hover a field for details.")
        self._store = store
        self._getters: dict[tuple[str, str], Getter] = {}
        for section, cls in SECTIONS.items():
            box = QGroupBox(_TITLES.get(section, section))
            form = QFormLayout(box)
            hints = typing.get_type_hints(cls)
            for fld in dataclasses.fields(cls):
                value = getattr(getattr(store.current.value, section), fld.name)
                editor, getter = _editor(hints[fld.name], value, fld.metadata)
                editor.setToolTip(str(fld.metadata.get("help", "")))
                form.addRow(_label(fld.name), editor)
                self._getters[(section, fld.name)] = getter
            self.body.addWidget(box)
        row = QHBoxLayout()
        self.message = QLabel("")
        self.message.setWordWrap(True)
        save = QPushButton("Save")
        save.setObjectName("Primary")
        save.clicked.connect(self.save)
        row.addWidget(self.message, 1)
        row.addWidget(save)
        self.body.addLayout(row)

    def save(self) -> bool:
        def change(current: Settings) -> Settings:
            sections = {
                name: dataclasses.replace(
                    getattr(current, name),
                    **{key: get() for (sec, key), get in self._getters.items() if sec == name},
                )
                for name in SECTIONS
            }
            return dataclasses.replace(current, **sections)

        try:
            self._store.update(change)
        except UserFacingError as exc:
            self.message.setText(exc.describe())
            restyle(self.message, "Error")
            return False
        self.message.setText("Saved.")
        restyle(self.message, "Muted")
        return True


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _editor(hint: Any, value: Any, meta: Any) -> tuple[QWidget, Getter]:
    if get_origin(hint) is Literal:
        combo = QComboBox()
        combo.addItems([str(choice) for choice in get_args(hint)])
        combo.setCurrentText(str(value))
        return combo, combo.currentText
    if hint is bool:
        check = QCheckBox()
        check.setChecked(bool(value))
        return check, check.isChecked
    if hint is int and meta.get("max") is not None and meta["max"] < _SPIN_MAX:
        spin = QSpinBox()
        spin.setRange(int(meta.get("min") or 0), int(meta["max"]))
        spin.setValue(int(value))
        return spin, spin.value
    if hint is int:
        # Nanoton amounts exceed a QSpinBox's range: edit as text, validated on Save.
        number = QLineEdit(str(value))

        def parsed() -> Any:
            text = number.text().strip().replace("_", "")
            return int(text) if text.lstrip("-").isdigit() else text

        return number, parsed
    if get_origin(hint) is tuple:
        item = get_args(hint)[0]
        line = QLineEdit(", ".join(str(v) for v in value))
        line.setPlaceholderText("comma-separated")

        def items() -> tuple[Any, ...]:
            parts = [p.strip() for p in line.text().split(",") if p.strip()]
            return tuple(int(p) if item is int and p.lstrip("-").isdigit() else p for p in parts)

        return line, items
    line = QLineEdit(str(value))
    return line, line.text
