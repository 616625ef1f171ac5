"""The hierarchy area: every step with its expected SUDS, last session's SUDS (peak → end,
from the clinic record), the SUDS recorded today and the look-away share, the current step
highlighted; the step buttons under it.

Step labels that do not fit are shown in full in their tooltip (and the current
step's label in full in the header).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QGroupBox,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from .model import PanelModel

TODAY_COLUMN, LAST_COLUMN, AWAY_COLUMN = 3, 4, 5


def last_suds_text(last: tuple[int | None, int | None] | None) -> str:
    """``55→30`` (peak → end last session); ``–`` for a step not reached last time."""
    if last is None:
        return "–"
    peak, end = last
    return f"{'?' if peak is None else peak}→{'?' if end is None else end}"


class HierarchyArea(QGroupBox):
    """The steps table and the step buttons; ``actions`` names what the buttons do
    (previous, repeat, next, jump)."""

    def __init__(self, model: PanelModel,
                 make_button: Callable[[str, str, str, Callable[[], object]], QPushButton],
                 actions: Mapping[str, Callable[[], object]]) -> None:
        super().__init__("Hierarchy — current step highlighted")
        self.model = model
        self._button = make_button
        self._steps_key: tuple[Any, ...] = ()
        self._row_cache: dict[int, tuple[Any, ...]] = {}
        #: Step id → last session's (peak, end) SUDS (``PatientHistory.last_suds()``).
        self._last_suds: dict[str, tuple[int | None, int | None]] = {}
        box = QVBoxLayout(self)
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["#", "Step", "Exp.", "SUDS", "Last", "Away"])
        last_header = self.table.horizontalHeaderItem(LAST_COLUMN)
        if last_header is not None:
            last_header.setToolTip("Last session's SUDS at this step: peak → end")
        # shown only for a patient the clinic record knows (no room taken otherwise)
        self.table.setColumnHidden(LAST_COLUMN, True)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setToolTip("Ctrl+L: go here; ↑/↓ choose a step; Ctrl+J (or double-click) "
                              "jumps to it")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for col in (2, 3, 4, 5):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.doubleClicked.connect(lambda _index: actions["jump"]())
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.setMinimumHeight(26 * 10 + 30)
        box.addWidget(self.table)
        steps = QGridLayout()
        self.prev_button = self._button("◀ Previous", "Ctrl+PgUp", "Go back one step",
                                        actions["previous"])
        self.repeat_button = self._button("↻ Repeat", "Ctrl+R", "Start this step again",
                                          actions["repeat"])
        self.next_button = self._button("Next ▶", "Ctrl+PgDn", "Go to the next step",
                                        actions["next"])
        self.jump_button = self._button("Jump", "Ctrl+J",
                                        "Jump to the step chosen in the list", actions["jump"])
        steps.addWidget(self.prev_button, 0, 0)
        steps.addWidget(self.repeat_button, 0, 1)
        steps.addWidget(self.next_button, 0, 2)
        steps.addWidget(self.jump_button, 0, 3)
        box.addLayout(steps)

    def reset(self) -> None:
        """A new session: the steps are read again."""
        self._steps_key = ()

    def show_away(self, row: int, text: str) -> None:
        """The look-away share of a step, as it grows (4 Hz)."""
        item = self.table.item(row, AWAY_COLUMN)
        if item is not None and item.text() != text:
            item.setText(text)
            self._row_cache.pop(row, None)

    def set_last_suds(self, last: Mapping[str, tuple[int | None, int | None]]) -> None:
        """Last session's SUDS per step id (peak, end), shown beside today's."""
        self._last_suds = dict(last)
        self.table.setColumnHidden(LAST_COLUMN, not self._last_suds)  # none: no room taken
        self._steps_key = ()  # the rows are filled again at the next state

    def update_table(self, state: Mapping[str, Any]) -> None:
        steps = self.model.steps()
        key = tuple((s.get("id"), s.get("label")) for s in steps)
        table = self.table
        if key != self._steps_key:
            self._steps_key = key
            self._row_cache.clear()
            table.setRowCount(len(steps))
            for row, step in enumerate(steps):
                label_item = self._cell(row, 1)
                label_item.setText(str(step.get("label") or step.get("id") or ""))
                label_item.setToolTip(f"{step.get('id')}: {step.get('label')}")
                expected = step.get("expected_suds")
                exp_item = self._cell(row, 2)
                exp_item.setText("" if expected is None else str(expected))
                exp_item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                last_item = self._cell(row, LAST_COLUMN)
                last_item.setText(last_suds_text(self._last_suds.get(str(step.get("id")))))
                last_item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                last_item.setToolTip("last session: peak → end SUDS"
                                     if str(step.get("id")) in self._last_suds
                                     else "not done last session")
        current = int(state.get("step_index", 0))
        highest = int(state.get("highest_step", 0))
        suds = self.model.suds_by_step()
        bold = QFont(table.font())
        bold.setBold(True)
        normal = QFont(table.font())
        for row in range(table.rowCount()):
            values = suds.get(row, [])
            shown = " · ".join(str(v) for v in values[-5:])
            if len(values) > 5:
                shown = "… " + shown
            marker = "▶" if row == current else ("✓" if row <= highest else "")
            share = self.model.look_away.get(row)
            share_value = share.share if share is not None else None
            away = "" if share_value is None else f"{100 * share_value:.0f} %"
            row_key = (marker, tuple(values), away)
            if self._row_cache.get(row) == row_key:
                continue  # unchanged: touching the items would repaint the table
            self._row_cache[row] = row_key
            items = [self._cell(row, col) for col in range(6)]
            items[0].setText(f"{marker} {row + 1}")
            items[TODAY_COLUMN].setText(shown)
            items[TODAY_COLUMN].setToolTip(", ".join(str(v) for v in values) or "no SUDS yet")
            items[AWAY_COLUMN].setText(away)
            items[AWAY_COLUMN].setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            background = QColor("#fff3c4") if row == current else QColor("white")
            for item in items:
                item.setBackground(QBrush(background))
                item.setFont(bold if row == current else normal)
        if self._shown_current_step != current:
            self._shown_current_step = current
            table.selectRow(current)
            if current < table.rowCount():
                table.scrollToItem(self._cell(current, 0))

    _shown_current_step: int | None = None
    _row_cache: dict[int, tuple[Any, ...]]

    def _cell(self, row: int, col: int) -> QTableWidgetItem:
        item = self.table.item(row, col)
        if item is None:
            item = QTableWidgetItem("")
            self.table.setItem(row, col, item)
        return item

