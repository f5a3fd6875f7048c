"""Opening a dialog from a coroutine without blocking the event loop (``open()`` + a future)."""

from __future__ import annotations

import asyncio

from PySide6.QtWidgets import QDialog


async def run_modal(dialog: QDialog) -> int:
    """Show ``dialog`` window-modal and wait until it finishes; returns its result code.

    ``QDialog.exec()`` would start a nested event loop inside a coroutine; ``open()`` keeps the
    one qasync loop running, so other tasks (refreshes, pending sends) go on meanwhile.
    """
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def finished(code: int) -> None:
        if not done.done():
            done.set_result(code)

    dialog.finished.connect(finished)
    dialog.open()
    try:
        return await done
    finally:
        dialog.finished.disconnect(finished)
