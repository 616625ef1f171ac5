"""The patient's course at session start: a self-contained widget for the therapist panel.

Sessions so far (date and hierarchy version, highest step, STOP uses), last session's SUDS per
step (peak and end), open expectancies, last session's notes and questionnaire trends. Fill
it with :meth:`HistoryWidget.set_history` from :func:`vrexposure.clinic.history.patient_history`.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..clinic.history import PatientHistory


def _table(headers: list[str], stretch: int) -> QTableWidget:
    """A read-only table; column ``stretch`` takes the width left (its text elided, whole in
    the tooltip) so the table fits the panel's narrow column without scrolling sideways."""
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)
    table.setWordWrap(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    table.setMinimumHeight(130)
    return table


def _fill(table: QTableWidget, rows: list[list[str]]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            if c != 1:
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            table.setItem(r, c, item)


def _dash(value: object) -> str:
    return "—" if value is None else str(value)


class HistoryWidget(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.title = QLabel("No patient selected")
        self.title.setStyleSheet("font-size: 13pt; font-weight: 600;")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        # one above the other: the panel's column is narrow
        tables = QVBoxLayout()
        sessions_box = QGroupBox("Sessions so far")
        # The date and hierarchy (id and version, the longest text) share a cell on two
        # lines; the hierarchy wraps at its hyphens rather than being cut: at 1280x720 the
        # column is ~300 px, too narrow for five columns on one line. Rows grow to fit.
        self.sessions_table = _table(["#", "date\nhierarchy", "highest\nstep", "STOP"], 1)
        self.sessions_table.setWordWrap(True)
        self.sessions_table.horizontalHeader().sectionResized.connect(
            lambda *_: self.sessions_table.resizeRowsToContents())
        QVBoxLayout(sessions_box).addWidget(self.sessions_table)
        last_box = QGroupBox("Last session: SUDS per step")
        self.last_table = _table(["step", "id", "peak", "end"], 1)
        QVBoxLayout(last_box).addWidget(self.last_table)
        tables.addWidget(sessions_box, 3)
        tables.addWidget(last_box, 2)
        layout.addLayout(tables, 1)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.details)

    def set_history(self, history: PatientHistory) -> None:
        count = len(history.sessions)
        self.title.setText(f"Patient {history.patient_id} — {count} session(s)"
                           + (f" — {history.course}" if history.course else ""))
        _fill(self.sessions_table, [
            [str(s.number), f"{s.date}\n{s.hierarchy_id}" + (f" v{s.hierarchy_version}"
                                                            if s.hierarchy_version else ""),
             _dash(s.highest_step), str(s.stops)] for s in history.sessions])
        self.sessions_table.resizeRowsToContents()
        _fill(self.last_table, [[str(s.step), s.step_id, _dash(s.suds_peak), _dash(s.suds_end)]
                                for s in history.last_steps])

        def section(title: str, lines: list[str]) -> str:
            body = "<br>".join(html.escape(line) for line in lines) or "—"
            return f"<p><b>{html.escape(title)}</b><br>{body}</p>"

        self.details.setText(
            section("Open expectancies", history.open_expectancies)
            + section("Last session's notes", history.last_notes)
            + section("Questionnaires", history.questionnaire_trends()))


__all__ = ["HistoryWidget"]
