"""``QrCode``: a crisp QR code of a text (the wallet's receive address), drawn with segno's matrix.

segno does the encoding (no hand-written Reed-Solomon); this module only paints its modules as
whole-pixel squares into a QImage, so the code stays sharp at any size a phone camera sees it.
"""

from __future__ import annotations

import segno
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QLabel

# Scanners need a light margin of four modules around the code (ISO/IEC 18004 "quiet zone").
QUIET_ZONE = 4
DARK = QColor("#000000")
LIGHT = QColor("#ffffff")


def qr_matrix(text: str) -> tuple[tuple[bool, ...], ...]:
    """The code's modules, row by row (True = dark), at error level M like most wallet apps."""
    code = segno.make(text, error="m")
    return tuple(tuple(bool(module) for module in row) for row in code.matrix)


def render(matrix: tuple[tuple[bool, ...], ...], module_px: int) -> QImage:
    """``matrix`` with its quiet zone, ``module_px`` pixels per module, always black on white:
    an inverted (light-on-dark) code from the dark theme is something many scanners reject."""
    side = (len(matrix) + 2 * QUIET_ZONE) * module_px
    image = QImage(side, side, QImage.Format.Format_RGB32)
    image.fill(LIGHT)
    painter = QPainter(image)
    try:
        for y, row in enumerate(matrix):
            for x, dark in enumerate(row):
                if dark:
                    painter.fillRect(
                        QRect(
                            (x + QUIET_ZONE) * module_px,
                            (y + QUIET_ZONE) * module_px,
                            module_px,
                            module_px,
                        ),
                        DARK,
                    )
    finally:
        painter.end()
    return image


class QrCode(QLabel):
    """Shows the QR code of ``set_text``'s text; hidden while there is none."""

    def __init__(self, *, module_px: int = 3, what: str = "address") -> None:
        super().__init__()
        self.module_px = module_px
        self._what = what
        self.text_encoded = ""
        self.matrix: tuple[tuple[bool, ...], ...] = ()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setObjectName("QrCode")
        self.hide()

    def set_text(self, text: str) -> None:
        if text == self.text_encoded:
            return
        self.text_encoded = text
        if not text:
            self.matrix = ()
            self.clear()
            self.hide()
            return
        self.matrix = qr_matrix(text)
        self.setPixmap(QPixmap.fromImage(render(self.matrix, self.module_px)))
        self.setAccessibleName(f"QR code of the {self._what}")
        self.setToolTip(
            f"QR code of the {self._what}: {text}\nScan it with a wallet app to pay it."
        )
        self.show()
