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

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
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
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.editor = HierarchyEditor(store, patient_id, draft)
        layout.addWidget(self.editor)
        self.editor.table.itemSelectionChanged.connect(self._step_chosen)
        self.editor.table.itemChanged.connect(lambda _item: self._step_chosen())
        self.resize(980, 560)

    def current_step(self) -> dict[str, Any] | None:
        """The step chosen in the editor, as it stands (its edited parameters)."""
        index = self.editor.selected()
        steps = self.editor.draft.steps
        return dict(steps[index]) if 0 <= index < len(steps) else None

    def _step_chosen(self) -> None:
        step = self.current_step()
        if step == self._shown_step:
            return
        self._shown_step = step
        if self._on_step is not None:
            self._on_step(step)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._on_step is not None and self._shown_step is not None:
            self._on_step(None)  # the patient goes back to the calm scene
        self._shown_step = None
        self.store.close()
        super().closeEvent(event)


__all__ = ["EditorWindow"]
