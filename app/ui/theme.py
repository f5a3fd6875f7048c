"""The app's look: its icon and style sheet, loaded from ``resources/``."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon

from app.core.paths import resources_dir


@cache
def app_icon() -> QIcon:
    return QIcon(str(resources_dir() / "icons" / "cocoon.svg"))


def style_sheet() -> str:
    return (resources_dir() / "styles" / "app.qss").read_text(encoding="utf-8")
