"""Free-text session notes: several lines, saved in the recording as they are typed.

The whole text is sent as a ``note`` command a moment after typing pauses (and when
the box loses the focus), so the recording holds the note as it grew, line breaks
kept; the newest ``note`` event of a ``note_id`` is the note.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFocusEvent
from PySide6.QtWidgets import QGroupBox, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

#: Typing pauses this long: the note is saved.
SAVE_AFTER_MS = 1500


class NotesEdit(QPlainTextEdit):
    """A plain-text box that reports losing the focus (the note is saved at once)."""

    left: Callable[[], None] | None = None

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        if self.left is not None:
            self.left()


class SessionNotes(QGroupBox):
    """The notes box; ``send(text, note_id)`` is how a note reaches the host."""

    def __init__(self, send: Callable[[str, int], str | None],
                 parent: QWidget | None = None) -> None:
        super().__init__("Session notes (saved as you type)", parent)
        self._send = send
        self.note_id = 1
        self.saved_text = ""
        box = QVBoxLayout(self)
        self.edit = NotesEdit()
        self.edit.setPlaceholderText("Observations, in your own words; several lines are "
                                     "fine. Saved in the recording as you type.")
        self.edit.setMinimumHeight(70)
        self.edit.setTabChangesFocus(True)
        self.edit.left = self.save_now
        self.status = QLabel("")
        self.status.setObjectName("muted")
        box.addWidget(self.edit)
        box.addWidget(self.status)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SAVE_AFTER_MS)
        self._timer.timeout.connect(self.save_now)
        self.edit.textChanged.connect(self._typed)

    def _typed(self) -> None:
        self.status.setText("… typing")
        self._timer.start()

    def save_now(self) -> None:
        self._timer.stop()
        text = self.edit.toPlainText()
        if text == self.saved_text or not text.strip():
            return
        if self._send(text, self.note_id) is not None:
            self.saved_text = text
            self.status.setText("… saving")

    def reset(self) -> bool:
        """Another patient's session: the box is emptied without sending anything (the
        text was saved in the previous recording as it was typed). True when text not yet
        saved was dropped."""
        self._timer.stop()
        unsaved = self.edit.toPlainText().strip() != self.saved_text.strip()
        self.edit.blockSignals(True)
        try:
            self.edit.clear()
        finally:
            self.edit.blockSignals(False)
        self.saved_text = ""
        self.note_id = 1
        self.status.setText("")
        return unsaved

    def saved(self, ok: bool, when: str, error: str = "") -> None:
        """The host's answer to a save."""
        self.status.setText(f"✓ saved at {when}" if ok else f"✗ not saved: {error}")


__all__ = ["SessionNotes"]
