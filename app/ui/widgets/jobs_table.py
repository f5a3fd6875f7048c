"""``JobsTable``: the recent served requests — time, model, tokens, earnings, energy, outcome."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from app.core.money import format_ton
from app.network.jobs import STATUS_OK, JobRecord

_COLUMNS = ("Finished", "Model", "Tokens", "Earned (TON)", "Energy (Wh)", "Duration", "Result")
ENERGY_COLUMN = _COLUMNS.index("Energy (Wh)")
RESULT_COLUMN = _COLUMNS.index("Result")
_RIGHT_ALIGNED = frozenset(
    _COLUMNS.index(name) for name in ("Tokens", "Earned (TON)", "Energy (Wh)", "Duration")
)
UNKNOWN = "—"


def energy_text(energy_wh: float | None) -> str:
    """A job's energy in Wh with two decimals; a dash when nothing measured it."""
    return UNKNOWN if energy_wh is None else f"{energy_wh:.2f}"


class JobsTable(QTableWidget):
    """Read-only; replaced as a whole by :meth:`show_jobs` (newest first). No prompt text exists
    to show: the job store never keeps it."""

    def __init__(self) -> None:
        super().__init__(0, len(_COLUMNS))
        self.setHorizontalHeaderLabels(list(_COLUMNS))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.setMinimumHeight(180)

    def show_jobs(self, jobs: list[JobRecord]) -> None:
        self.setRowCount(len(jobs))
        for row, job in enumerate(jobs):
            ok = job.status == STATUS_OK
            result = "OK" if ok else f"{job.status} {job.error_code or job.http_status}".strip()
            cells = (
                datetime.fromtimestamp(job.finished_at).strftime("%H:%M:%S"),
                job.model,
                str(job.tokens.total_tokens_used),
                format_ton(job.earned_nanotons, trim=True),
                energy_text(job.energy_wh),
                f"{max(0.0, job.finished_at - job.started_at):.1f} s",
                result,
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column in _RIGHT_ALIGNED:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if column == RESULT_COLUMN and not ok:
                    item.setToolTip(job.error_message)
                if column == ENERGY_COLUMN and job.energy_wh is None:
                    item.setToolTip("No GPU energy reading covered this job.")
                self.setItem(row, column, item)
