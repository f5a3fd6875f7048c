"""``PipelinePanel``: "Why am I not earning?" — one row per stage of the earning pipeline, from a
running engine to TON in the wallet: a coloured mark for its state, the reason, and the fix for
a stage that blocks earning or has not happened yet."""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

from app.network.pipeline import Pipeline, Stage, StageState

TITLE: Final = "Why am I not earning?"
# The mark, its colour and what it says (the tooltip), per state; the colours are the theme's.
MARKS: Final = {
    StageState.OK: ("✓", "#1f9d55", "Working"),
    StageState.BLOCKED: ("✗", "#b91c1c", "Blocks earning: fix this first"),
    StageState.WAITING: ("…", "#b45309", "Not happened yet"),
    StageState.SKIPPED: ("–", "#9ca3af", "Does not apply here"),
}
_FIX_COLOUR: Final = "#0a64d6"
_OPEN: Final = (StageState.BLOCKED, StageState.WAITING)


def verdict(pipeline: Pipeline) -> tuple[str, str]:
    """The panel's first line and its colour: the first stage to look at, or all is well."""
    problem = pipeline.first_problem
    if problem is None:
        return "Every stage works: requests are served and paid.", MARKS[StageState.OK][1]
    mark, colour, _ = MARKS[problem.state]
    what = "blocked" if problem.state is StageState.BLOCKED else "waiting"
    return f"{mark} {problem.title}: {what}. {problem.fix or problem.reason}", colour


class StageRow:
    """The labels of one stage: mark, title, reason and fix (``fix`` hidden when not needed)."""

    def __init__(self, grid: QGridLayout, row: int, parent: QWidget) -> None:
        self.mark = QLabel(parent)
        self.mark.setFixedWidth(18)
        self.mark.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.title = QLabel(parent)
        self.title.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.reason = QLabel(parent)
        self.reason.setObjectName("Muted")
        self.reason.setWordWrap(True)
        self.reason.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fix = QLabel(parent)
        self.fix.setWordWrap(True)
        self.fix.setStyleSheet(f"color: {_FIX_COLOUR};")
        text = QVBoxLayout()
        text.setContentsMargins(0, 0, 0, 0)
        text.setSpacing(1)
        text.addWidget(self.reason)
        text.addWidget(self.fix)
        grid.addWidget(self.mark, row, 0)
        grid.addWidget(self.title, row, 1)
        grid.addLayout(text, row, 2)
        self._shown: Stage | None = None

    def show(self, stage: Stage) -> None:
        if stage == self._shown:
            return
        self._shown = stage
        mark, colour, meaning = MARKS[stage.state]
        self.mark.setText(mark)
        self.mark.setToolTip(meaning)
        self.mark.setStyleSheet(f"color: {colour}; font-weight: 700;")
        weight = 600 if stage.state in _OPEN else 400
        muted = "color: #6b7280;" if stage.state is StageState.SKIPPED else ""
        self.title.setStyleSheet(f"font-weight: {weight}; {muted}")
        self.title.setText(stage.title)
        self.reason.setText(stage.reason)
        needs_fix = bool(stage.fix) and stage.state in _OPEN
        self.fix.setText(f"→ {stage.fix}" if needs_fix else "")
        self.fix.setVisible(needs_fix)


class PipelinePanel(QFrame):
    """A card; :meth:`show_pipeline` fills it (rows are made once per stage and reused)."""

    def __init__(self, pipeline: Pipeline | None = None) -> None:
        super().__init__()
        self.setObjectName("Card")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 14)
        layout.setSpacing(8)
        caption = QLabel(TITLE)
        caption.setObjectName("CardTitle")
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        layout.addWidget(caption)
        layout.addWidget(self.verdict)
        self._grid = QGridLayout()
        self._grid.setHorizontalSpacing(12)
        self._grid.setVerticalSpacing(6)
        self._grid.setColumnStretch(2, 1)
        self._grid.setColumnMinimumWidth(1, 200)
        layout.addLayout(self._grid)
        self.rows: dict[str, StageRow] = {}
        if pipeline is not None:
            self.show_pipeline(pipeline)

    def show_pipeline(self, pipeline: Pipeline) -> None:
        text, colour = verdict(pipeline)
        self.verdict.setText(text)
        self.verdict.setStyleSheet(f"color: {colour}; font-weight: 600;")
        for stage in pipeline.stages:
            row = self.rows.get(stage.key)
            if row is None:
                row = self.rows[stage.key] = StageRow(self._grid, len(self.rows), self)
            row.show(stage)
