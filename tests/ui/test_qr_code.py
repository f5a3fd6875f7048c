"""The receive address's QR code: segno's matrix painted module for module, following the wallet."""

from __future__ import annotations

import segno
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from app.ui.pages.wallet import LOCKED, SETUP, UNLOCKED
from app.ui.viewmodels.wallet import WalletViewModel
from app.ui.widgets.qr_code import QUIET_ZONE, QrCode
from tests.ui.conftest import shot
from tests.ui.test_wallet_page import PASSWORD, PEER_FRIENDLY, make_page
from tests.unit.wallet.conftest import TEST_VECTOR_PHRASE

ADDRESS = PEER_FRIENDLY


def painted(widget: QrCode) -> list[list[bool]]:
    """Which modules of the widget's pixmap are dark, sampled at each module's centre."""
    image = widget.pixmap().toImage().convertToFormat(QImage.Format.Format_RGB32)
    size = image.width() // widget.module_px - 2 * QUIET_ZONE
    half = widget.module_px // 2
    return [
        [
            image.pixelColor(
                (x + QUIET_ZONE) * widget.module_px + half,
                (y + QUIET_ZONE) * widget.module_px + half,
            ).lightness()
            < 128
            for x in range(size)
        ]
        for y in range(size)
    ]


def expected(text: str) -> list[list[bool]]:
    return [[bool(module) for module in row] for row in segno.make(text, error="m").matrix]


def test_pixels_are_segnos_matrix_with_a_light_quiet_zone(qtbot: QtBot) -> None:
    widget = QrCode(module_px=4)
    qtbot.addWidget(widget)
    widget.set_text(ADDRESS)
    assert not widget.isHidden()
    assert painted(widget) == expected(ADDRESS)
    image = widget.pixmap().toImage()
    side = (len(expected(ADDRESS)) + 2 * QUIET_ZONE) * 4
    assert image.width() == image.height() == side
    edge = [image.pixelColor(i, j).lightness() for i in range(side) for j in range(4 * QUIET_ZONE)]
    assert min(edge) > 200  # the quiet zone is light everywhere
    assert "QR code" in widget.accessibleName()
    assert ADDRESS in widget.toolTip()


def test_follows_the_text_and_hides_without_one(qtbot: QtBot) -> None:
    widget = QrCode()
    qtbot.addWidget(widget)
    assert widget.isHidden()
    widget.set_text(ADDRESS)
    other = "0:" + "ab" * 32
    widget.set_text(other)
    assert painted(widget) == expected(other)
    assert painted(widget) != expected(ADDRESS)
    widget.set_text("")
    assert widget.isHidden()
    assert widget.matrix == ()


async def test_wallet_page_shows_the_receive_address_code(
    qtbot: QtBot, wallet_vm: WalletViewModel
) -> None:
    page = make_page(qtbot, wallet_vm)
    assert page.views.currentIndex() == SETUP
    assert page.qr_code.isHidden()  # no wallet, no code
    assert await wallet_vm.import_wallet(TEST_VECTOR_PHRASE, PASSWORD) is None
    page.password.setText(PASSWORD)
    assert await page.unlock()
    assert page.views.currentIndex() == UNLOCKED
    address = page.address.text()
    assert address.startswith("0Q")
    assert page.qr_code.text_encoded == address
    assert painted(page.qr_code) == expected(address)
    await page.faucet()
    shot(page, "page-4-qr")
    page.lock_button.click()
    assert page.views.currentIndex() == LOCKED
