"""``SettingsPage``: every setting, generated from the typed settings sections, with help texts."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
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
from app.ui.dialogs.modal import run_modal
from app.ui.pages.page import Page
from app.ui.qt_async import async_slot
from app.ui.theme import restyle
from app.ui.viewmodels.support import SupportViewModel
from app.ui.viewmodels.wallet import Failure

_TITLES = {
    "general": "General",
    "engine": "Engine and GPU",
    "worker": "Worker",
    "wallet": "Wallet",
    "payouts": "Payouts (cashing out your earnings)",
    "devnet": "Local test network",
}

Getter = Callable[[], Any]
_SPIN_MAX = 2**31 - 1


class SettingsPage(Page):
    """Edits a copy of the settings; Save validates through the store, which names any bad key.

    ``support`` writes support bundles; by default, of the data folder holding the settings file.
    """

    def __init__(self, store: SettingsStore, support: SupportViewModel | None = None) -> None:
        super().__init__("Settings", "Changes apply after Save. Hover a field for details.")
        self._store = store
        self._support = support or SupportViewModel.for_data_dir(
            store.path.parent, store.current.value.general.network
        )
        self.dialog: QDialog | None = None  # the open file dialog (tests drive it)
        self._getters: dict[tuple[str, str], Getter] = {}
        for section, cls in SECTIONS.items():
            box = QGroupBox(_TITLES.get(section, section))
            form = QFormLayout(box)
            hints = typing.get_type_hints(cls)
            for fld in dataclasses.fields(cls):
                value = getattr(getattr(store.current.value, section), fld.name)
                if fld.metadata.get("hidden"):
                    # Managed by the app itself (e.g. the active wallet): kept, not shown.
                    self._getters[(section, fld.name)] = _kept(section, fld.name, store)
                    continue
                editor, getter = _editor(hints[fld.name], value, fld.metadata)
                editor.setToolTip(str(fld.metadata.get("help", "")))
                editor.setAccessibleName(_label(fld.name, fld.metadata))
                form.addRow(_label(fld.name, fld.metadata), editor)
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
        self.body.addLayout(self._support_row())

    def _support_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.support_message = QLabel("")
        self.support_message.setWordWrap(True)
        self.support_button = QPushButton("Create support bundle…")
        self.support_button.setToolTip(
            "One zip with the logs, settings and the doctor report, to attach to a bug report. "
            "Secrets, TON addresses, IP addresses and request texts are removed first; wallets "
            "and databases are never included."
        )
        self.support_button.clicked.connect(self._support_clicked)
        row.addWidget(self.support_message, 1)
        row.addWidget(self.support_button)
        return row

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

    @async_slot()
    async def _support_clicked(self) -> None:
        await self.create_support_bundle()

    async def create_support_bundle(self) -> None:
        """Ask for a file name, write the bundle there and say how it went (tests await it)."""
        dialog = QFileDialog(
            self, "Save a support bundle", f"cocoon-provider-support-{date.today():%Y%m%d}.zip"
        )
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter("Zip archives (*.zip)")
        dialog.setDefaultSuffix("zip")
        self.dialog = dialog
        try:
            accepted = await run_modal(dialog) == QDialog.DialogCode.Accepted
            chosen = dialog.selectedFiles() if accepted else []
        finally:
            self.dialog = None
            dialog.deleteLater()
        if not chosen:
            return
        self.support_button.setEnabled(False)
        self.support_message.setText("Collecting logs and the doctor report…")
        restyle(self.support_message, "Muted")
        try:
            result = await self._support.create_bundle(Path(chosen[0]))
        finally:
            self.support_button.setEnabled(True)
        if isinstance(result, Failure):
            self.support_message.setText(result.text)
            restyle(self.support_message, "Error")
            return
        self.support_message.setText(f"Saved {result.path} · {result.redacted} items redacted.")
        restyle(self.support_message, "Muted")


def _label(name: str, meta: Any) -> str:
    """The field's label from its settings metadata (the raw name only as a fallback)."""
    return str(meta.get("label") or name.replace("_", " ").capitalize())


def _kept(section: str, name: str, store: SettingsStore) -> Getter:
    """A hidden field keeps whatever the store holds when the page saves."""
    return lambda: getattr(getattr(store.current.value, section), name)


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
