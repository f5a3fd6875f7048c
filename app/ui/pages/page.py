"""``Page``: the common frame of every main-window page (title, subtitle, content) and ``Card``."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget


class Page(QWidget):
    """A scrollable-looking page with a title line; subclasses add content to ``self.body``."""

    def __init__(self, title: str, subtitle: str = "") -> None:
        super().__init__()
        self.setObjectName("Page")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(28, 24, 28, 24)
        layout.setSpacing(16)
        heading = QLabel(title)
        heading.setObjectName("PageTitle")
        layout.addWidget(heading)
        if subtitle:
            sub = QLabel(subtitle)
            sub.setObjectName("Muted")
            sub.setWordWrap(True)
            layout.addWidget(sub)
        self.body = QVBoxLayout()
        self.body.setSpacing(16)
        layout.addLayout(self.body)
        layout.addStretch(1)


class Card(QFrame):
    """A white rounded panel with a small caption and a big value line."""

    def __init__(self, caption: str, value: str = "—", detail: str = "") -> None:
        super().__init__()
        self.setObjectName("Card")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 14)
        self.caption = QLabel(caption)
        self.caption.setObjectName("CardTitle")
        self.value = QLabel(value)
        self.value.setObjectName("BigValue")
        self.detail = QLabel(detail)
        self.detail.setObjectName("Muted")
        self.detail.setWordWrap(True)
        for widget in (self.caption, self.value, self.detail):
            layout.addWidget(widget)

    def show_value(self, value: str, detail: str = "") -> None:
        self.value.setText(value)
        self.detail.setText(detail)
