"""Questions asked inside the panel window, never in a modal dialog.

A modal dialog takes every key and click until it is answered, STOP included (issue 13:
F12 did nothing while "End the session?" was open). :class:`InlineQuestion` is a bar in
the window: the question, one button per answer and Cancel; the rest of the window, and
above all STOP, stays live while it is open.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

#: One answer: (button text, what it does).
Choice = tuple[str, Callable[[], object]]


class InlineQuestion(QFrame):
    """A question bar: ``ask(text, choices)`` shows it; an answer or Cancel hides it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("question")
        self.setStyleSheet(
            "QFrame#question { background: #fff8e1; border: 2px solid #b76e00;"
            " border-radius: 6px; } QLabel { border: none; background: transparent;"
            " font-size: 12pt; font-weight: 600; }")
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(10, 4, 10, 4)
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setMinimumWidth(240)
        self._row.addWidget(self.label, 1)
        self.buttons: list[QPushButton] = []
        self.cancel_button = QPushButton("Cancel  [Esc]")
        self.cancel_button.clicked.connect(self.cancel)
        self._row.addWidget(self.cancel_button)
        self._on_cancel: Callable[[], object] | None = None
        self.hide()

    @property
    def is_open(self) -> bool:
        return not self.isHidden()

    def ask(self, text: str, choices: Sequence[Choice],
            on_cancel: Callable[[], object] | None = None) -> None:
        """Show ``text`` with one button per choice (a new question replaces an open one)."""
        for button in self.buttons:
            self._row.removeWidget(button)
            button.deleteLater()
        self.buttons = []
        self.label.setText(text)
        for index, (title, action) in enumerate(choices):
            button = QPushButton(title)
            button.clicked.connect(lambda _c=False, a=action: self._answer(a))
            self._row.insertWidget(1 + index, button)
            self.buttons.append(button)
        self._on_cancel = on_cancel
        self.show()
        if self.buttons:
            # the first answer takes Enter; STOP (F12) is an application shortcut and
            # works whatever has the focus
            self.buttons[0].setAutoDefault(True)
            self.buttons[0].setFocus(Qt.FocusReason.OtherFocusReason)

    def choice(self, title_start: str) -> QPushButton:
        """The answer button whose text starts with ``title_start`` (tests, shortcuts)."""
        return next(b for b in self.buttons if b.text().startswith(title_start))

    def _answer(self, action: Callable[[], object]) -> None:
        self.hide()
        action()

    def cancel(self) -> None:
        if self.isHidden():
            return
        self.hide()
        if self._on_cancel is not None:
            self._on_cancel()


__all__ = ["Choice", "InlineQuestion"]
