"""Building the patient's own hierarchy with them: a self-contained editor widget.

Starts from a template (or the patient's current version), lets the therapist reorder,
remove and duplicate steps, edit labels and record the patient's own expected SUDS, shows
the same errors and clinical warnings as ``vrexposure validate`` live, orders steps by the
patient's ratings on request, and saves a new version to the clinic database.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..clinic.draft import DraftError, HierarchyDraft, params_text
from ..clinic.store import ClinicStore

COLUMNS = ["#", "id", "situation", "patient's SUDS", "scene parameters"]
SUDS_COLUMN = 3
LABEL_COLUMN = 2
#: Edited as a YAML flow mapping, e.g. ``{count: 1, distance_m: 2.5}``.
PARAMS_COLUMN = 4
EDITABLE = (LABEL_COLUMN, SUDS_COLUMN, PARAMS_COLUMN)


class HierarchyEditor(QWidget):
    #: A new version was saved: its number.
    saved = Signal(int)

    def __init__(self, store: ClinicStore, patient_id: str, draft: HierarchyDraft,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store, self.patient_id, self.draft = store, patient_id, draft
        self._filling = False
        layout = QVBoxLayout(self)
        self.title = QLabel(f"Hierarchy of patient {patient_id}")
        self.title.setStyleSheet("font-size: 13pt; font-weight: 600;")
        layout.addWidget(self.title)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(LABEL_COLUMN, QHeaderView.ResizeMode.Stretch)
        # Long parameter lists must not squeeze the situation: a fixed, resizable width
        # (the whole text is in the tooltip).
        header.setSectionResizeMode(PARAMS_COLUMN, QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(PARAMS_COLUMN, 300)
        self.table.itemChanged.connect(self._edited)
        layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for key, text in (("up", "Move up"), ("down", "Move down"),
                          ("duplicate", "Duplicate"), ("remove", "Remove"),
                          ("order", "Order by patient's SUDS"),
                          ("save", "Save new version  [Ctrl+S]")):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, k=key: self.act(k))
            buttons.addWidget(button)
            self.buttons[key] = button
        layout.addLayout(buttons)
        save_keys = QShortcut(QKeySequence("Ctrl+S"), self)
        save_keys.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        save_keys.activated.connect(lambda: self.act("save"))
        self.problems = QListWidget()
        self.problems.setMaximumHeight(120)
        layout.addWidget(self.problems)
        self.status = QLabel()
        layout.addWidget(self.status)
        self.refresh()

    def selected(self) -> int:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def act(self, key: str) -> None:
        index = self.selected()
        try:
            if key == "up" and index > 0:
                self.draft.move(index, index - 1)
                index -= 1
            elif key == "down" and 0 <= index < len(self.draft.steps) - 1:
                self.draft.move(index, index + 1)
                index += 1
            elif key == "duplicate" and index >= 0:
                index = self.draft.duplicate(index)
            elif key == "remove" and index >= 0:
                self.draft.remove(index)
                index = min(index, len(self.draft.steps) - 1)
            elif key == "order":
                self.draft.order_by_ratings()
            elif key == "save":
                self.save()
                return
        except DraftError as exc:
            self.status.setText(str(exc))
            return
        self.refresh()
        if index >= 0:
            self.table.selectRow(index)

    def save(self) -> int | None:
        hierarchy, _ = self.draft.validate()
        if hierarchy is None or not self.draft.savable():
            self.status.setText("Not saved: fix the errors listed above.")
            return None
        try:
            version = self.store.save_hierarchy(self.patient_id, self.draft.to_yaml(),
                                                hierarchy.id, "built in the panel")
        except Exception as exc:  # the database away or locked: say so, keep the draft
            self.status.setText(f"Not saved: the clinic record answered: {exc}")
            return None
        self.status.setText(f"Saved as version {version}.")
        self.saved.emit(version)
        return version

    def _edited(self, item: QTableWidgetItem) -> None:
        if self._filling:
            return
        row, column = item.row(), item.column()
        try:
            if column == SUDS_COLUMN:
                self.draft.set_expected_suds(row, int(item.text()))
            elif column == LABEL_COLUMN:
                self.draft.set_label(row, item.text())
            elif column == PARAMS_COLUMN:
                self.draft.set_params(row, item.text())
        except (ValueError, DraftError) as exc:
            self.status.setText(f"step {row + 1}: {exc}")
        self.refresh()

    def refresh(self) -> None:
        self._filling = True
        try:
            steps = self.draft.steps
            self.table.setRowCount(len(steps))
            for row, step in enumerate(steps):
                cells = [str(row + 1), str(step.get("id", "")), str(step.get("label", "")),
                         str(step.get("expected_suds", "")), params_text(step)]
                for column, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    item.setToolTip(text)
                    if column not in EDITABLE:
                        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                    if column in (0, SUDS_COLUMN):
                        item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    self.table.setItem(row, column, item)
        finally:
            self._filling = False
        problems = self.draft.problems()
        self.problems.clear()
        for problem in problems:
            line = QListWidgetItem(f"{problem.severity}: {problem.message}")
            line.setForeground(Qt.GlobalColor.darkRed if problem.severity == "error"
                               else Qt.GlobalColor.darkYellow)
            self.problems.addItem(line)
        if not problems:
            self.problems.addItem("No problems: this hierarchy passes vrexposure validate.")
        self.buttons["save"].setEnabled(self.draft.savable())


__all__ = ["HierarchyEditor"]
