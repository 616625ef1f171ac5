"""The hierarchy editor opened from the panel: a window of its own, never modal.

The therapist builds the patient's hierarchy while the session waits (and STOP, F12, stays
live: it is an application-wide shortcut of the panel, so it works with this window in
front). The step chosen in the editor is offered to ``on_step`` (the panel sends it to the
host as ``preview_step`` so the patient sees it in the headset); closing the window ends the
preview and closes the clinic record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget

from ..clinic.draft import HierarchyDraft
from ..clinic.store import ClinicStore
from .hierarchy_editor import HierarchyEditor


class EditorWindow(QWidget):
    """:class:`HierarchyEditor` in a top-level, non-modal window."""

    def __init__(self, store: ClinicStore, patient_id: str, draft: HierarchyDraft, *,
                 on_step: Callable[[dict[str, Any] | None], object] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowModality(Qt.WindowModality.NonModal)  # STOP stays a click away
        self.setWindowTitle(f"vrexposure — hierarchy of patient {patient_id}")
        self.store = store
        self._on_step = on_step
        self._shown_step: dict[str, Any] | None = None
        self._shown_key: tuple[str, str] | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.editor = HierarchyEditor(store, patient_id, draft)
        layout.addWidget(self.editor)
        self.editor.table.itemSelectionChanged.connect(self._step_chosen)
        self.editor.table.itemChanged.connect(lambda _item: self._step_chosen())
        self.resize(980, 560)
        # the keyboard starts in the steps: ↓ chooses a step (and shows it in the headset);
        # nothing is shown before the therapist chooses
        self.editor.table.installEventFilter(self)
        self.editor.table.setFocus()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # Qt makes the first row current (unselected) on focus, so the first ↓ would choose
        # step 2: with nothing chosen yet, ↓ or ↑ chooses that first row instead
        if (watched is self.editor.table and event.type() == QEvent.Type.KeyPress
                and isinstance(event, QKeyEvent)
                and event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Up)
                and self.editor.selected() < 0 and self.editor.table.rowCount()):
            row = max(0, self.editor.table.currentRow())
            self.editor.table.selectRow(row)
            return True
        return super().eventFilter(watched, event)

    def current_step(self) -> dict[str, Any] | None:
        """The step chosen in the editor, as it stands (its edited parameters)."""
        index = self.editor.selected()
        steps = self.editor.draft.steps
        return dict(steps[index]) if 0 <= index < len(steps) else None

    def _step_chosen(self) -> None:
        step = self.current_step()
        # what the headset shows: the step and its parameters (a new label or rating: no
        # new preview)
        key = None if step is None else (str(step.get("id")),
                                         repr((step.get("params"), step.get("intensity"))))
        if step is None or key == self._shown_key:
            return  # a lost selection (the table refilled) keeps the step on show
        self._shown_key, self._shown_step = key, step
        if self._on_step is not None:
            self._on_step(step)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._on_step is not None and self._shown_step is not None:
            self._on_step(None)  # the patient goes back to the calm scene
        self._shown_step = None
        self.store.close()
        super().closeEvent(event)


__all__ = ["EditorWindow"]
