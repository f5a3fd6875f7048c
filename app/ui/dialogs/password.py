"""``NewPasswordFields`` (a password typed twice, checked) and ``NewPasswordDialog`` built on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from PySide6.QtWidgets import (
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app.ui.dialogs.building_blocks import GuardedDialog
from app.ui.qt_async import async_slot
from app.ui.viewmodels.wallet import Failure
from app.wallet.vault_format import MIN_PASSWORD_CHARS


def password_edit(placeholder: str = "") -> QLineEdit:
    edit = QLineEdit()
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    edit.setPlaceholderText(placeholder)
    return edit


class NewPasswordFields(QWidget):
    """Password plus confirmation; :meth:`password` returns it, or a :class:`Failure` to show."""

    def __init__(self) -> None:
        super().__init__()
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.first = password_edit(f"at least {MIN_PASSWORD_CHARS} characters")
        self.second = password_edit("the same password again")
        form.addRow("Password", self.first)
        form.addRow("Confirm password", self.second)

    def password(self) -> str | Failure:
        first = self.first.text()
        if len(first) < MIN_PASSWORD_CHARS:
            return Failure(
                f"Choose a password of at least {MIN_PASSWORD_CHARS} characters.\n"
                "It protects your wallet on this computer."
            )
        if first != self.second.text():
            return Failure("The two passwords differ. Type the same password twice.")
        return first

    def clear(self) -> None:
        self.first.clear()
        self.second.clear()


class NewPasswordDialog(GuardedDialog):
    """Asks for a new password twice, then runs ``action`` with it; stays open on a failure."""

    def __init__(
        self,
        title: str,
        explanation: str,
        action: Callable[[str], Awaitable[Failure | None]],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self._action = action
        layout = QVBoxLayout(self)
        intro = QLabel(explanation)
        intro.setWordWrap(True)
        self.fields = NewPasswordFields()
        self.error = QLabel("")
        self.error.setObjectName("Error")
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._on_ok)
        self.buttons.rejected.connect(self.reject)
        for widget in (intro, self.fields, self.error, self.buttons):
            layout.addWidget(widget)
        self.setMinimumWidth(420)

    @async_slot()
    async def _on_ok(self) -> None:
        await self.submit()

    async def submit(self) -> bool:
        """Check the fields and run the action; True when the dialog closed successfully."""
        password = self.fields.password()
        if isinstance(password, Failure):
            self.error.setText(password.text)
            return False
        return await self.finish_with(self._action(password), self.error, "Working…", self.buttons)

    def done(self, code: int) -> None:
        self.fields.clear()  # secrets do not outlive the dialog
        super().done(code)
