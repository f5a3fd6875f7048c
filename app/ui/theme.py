"""The app's look: its icon and style sheet, loaded from ``resources/``, and ``restyle``."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QWidget

from app.core.paths import resources_dir


@cache
def app_icon() -> QIcon:
    return QIcon(str(resources_dir() / "icons" / "cocoon.svg"))


def style_sheet() -> str:
    return (resources_dir() / "styles" / "app.qss").read_text(encoding="utf-8")


def restyle(widget: QWidget, name: str) -> None:
    """Give ``widget`` the object name ``name`` and re-apply the style sheet, which selects on
    object names (a new name alone changes nothing on screen)."""
    widget.setObjectName(name)
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
